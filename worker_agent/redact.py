"""Hides secret values in a command's output before it leaves the worker.

The coordinator sends, with each command, the secret values it was given; every occurrence in
the header and output is replaced by ``<secret NAME>``. Output arrives in reads of any size, so a
value may be split across reads: a :class:`StreamRedactor` holds back only a tail that could
still be the start of a secret (at most the longest value's length minus one byte), so memory
stays bounded and output is delayed only while it may be part of a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class Redactor:
    """The secrets of one command: values (bytes) and what replaces each."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        pairs: dict[bytes, bytes] = {}
        for name, value in secrets:
            if value:
                pairs[value.encode()] = f"<secret {name}>".encode()
        # Longest first: where two values start at one position, the longer one is hidden whole.
        self._values = sorted(pairs, key=len, reverse=True)
        self._replacement = pairs
        self._pattern = re.compile(b"|".join(re.escape(v) for v in self._values)) if pairs else None
        self.max_len = len(self._values[0]) if self._values else 0

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """`text` (complete, e.g. a header line) with every secret hidden."""
        return self.whole(text.encode()).decode(errors="replace") if self else text

    def whole(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        return self._pattern.sub(lambda m: self._replacement[m.group(0)], data)

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)

    def _replace(self, value: bytes) -> bytes:
        return self._replacement[value]

    def _partial_at(self, buf: bytes, start: int) -> int:
        """The first position >= start where the rest of `buf` is a strict prefix of a secret
        (it may continue in the next read); len(buf) when there is none."""
        for q in range(max(start, len(buf) - self.max_len + 1), len(buf)):
            tail = buf[q:]
            if any(len(v) > len(tail) and v.startswith(tail) for v in self._values):
                return q
        return len(buf)


class StreamRedactor:
    """Redacts one output channel read by read: ``feed()`` returns what may be sent now,
    ``flush()`` (at end of output) what was held back."""

    def __init__(self, redactor: Redactor) -> None:
        self._r = redactor
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        pattern = self._r._pattern
        if pattern is None:
            return data
        buf = self._held + data
        out = bytearray()
        pos = 0
        while True:
            hold = self._r._partial_at(buf, pos)
            m = pattern.search(buf, pos)
            if m is not None and m.start() < hold:
                out += buf[pos : m.start()]
                out += self._r._replace(m.group(0))
                pos = m.end()
                continue
            out += buf[pos:hold]
            self._held = buf[hold:]
            return bytes(out)

    def flush(self) -> bytes:
        """The held tail (a strict prefix of a longer secret may still hold a shorter one)."""
        held, self._held = self._held, b""
        return self._r.whole(held)
