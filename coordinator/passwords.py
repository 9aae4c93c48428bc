"""Password hashes for local users (``Auth(users={"alice": "$argon2id$..."})``), with argon2-cffi.

``python -m coordinator.passwords`` asks for a password and prints its hash for the config."""

from __future__ import annotations

import getpass
import sys

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified when the user is unknown, so an unknown name costs the same time as a wrong password.
_DUMMY = _hasher.hash("no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored` (None: unknown user, checked against a dummy)."""
    try:
        return _hasher.verify(stored if stored is not None else _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def is_hash(text: str) -> bool:
    return text.startswith("$argon2")


def main() -> int:
    first = getpass.getpass("password: ")
    if not first or getpass.getpass("again: ") != first:
        print("the passwords differ (or are empty)", file=sys.stderr)
        return 1
    print(hash_password(first))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
