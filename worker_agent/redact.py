"""Hides secret values in a command's output before it leaves the worker.

The coordinator sends, with each command, the secret values it was given; every occurrence in
the header and output is replaced by ``<secret NAME>`` — the value itself and the forms a build
tool commonly prints it in (`forms`):

- the value as UTF-8, and with its line endings as LF, CRLF or CR;
- base64 (standard and URL-safe) in each of the three alignments a value can have inside a
  longer encoded blob (the characters that depend only on the value, at least MIN_ENCODED long);
- URL-encoding (``%XX``, and ``+`` for spaces), JSON string escaping (ASCII and not), shell
  quoting (``shlex.quote`` and backslash escaping), hex (lower and upper case);
- for a multi-line value (a PEM key), each line of at least MIN_LINE characters on its own.

Output arrives in reads of any size, so a value may be split across reads: a
:class:`StreamRedactor` holds back only a tail that could still be the start of a form (at most
the longest form's length minus one byte), so memory stays bounded and output is delayed only
while it may be part of a secret.

The coordinator runs the same engine for MasterShellCommand output: it keeps a byte-identical
copy in coordinator/domain/properties/redaction.py (worker and coordinator share only protos;
tests/security/test_redaction.py fails when the copies differ).
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import urllib.parse
from collections.abc import Iterable

MIN_LINE = 16  # shorter lines of a multi-line secret ("-----END", "") would hide too much
MIN_ENCODED = 8  # shorter encoded fragments would match ordinary text
MIN_PART = 8  # this many characters of a secret in a path are refused
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NEEDLE = 4  # bytes of a form located with bytes.find before a full comparison
_PREFIX = 6  # bytes of a form scanned for before matching the whole forms


def _b64_fragments(raw: bytes, alphabet: bytes | None) -> list[bytes]:
    """The base64 characters determined by `raw` alone, for each offset mod 3 it may have."""
    out = []
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + raw, altchars=alphabet)
        first = -(-8 * k // 6)  # ceil: the first character whose 6 bits are all from `raw`
        last = 8 * (k + len(raw)) // 6  # the characters before this one end inside `raw`
        fragment = encoded[first:last]
        if len(fragment) >= MIN_ENCODED:
            out.append(fragment)
    return out


def _escaped(value: str) -> set[str]:
    out = {
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote(value),
        urllib.parse.quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        re.sub(r"([^\w@%+=:,./-])", r"\\\1", value),
    }
    quoted = shlex.quote(value)
    out.add(quoted[1:-1] if quoted.startswith("'") and quoted.endswith("'") else quoted)
    return out


def forms(value: str) -> set[bytes]:
    """Every byte string that counts as `value` in output."""
    if not value:
        return set()
    lines = _LINE_BREAK.split(value)
    wholes = {value}
    if len(lines) > 1:
        wholes |= {"\n".join(lines), "\r\n".join(lines), "\r".join(lines)}
        wholes |= {w.rstrip("\r\n") for w in wholes}  # printed without its final line break
    texts: set[str] = set()
    for whole in wholes:
        texts.add(whole)
        texts |= _escaped(whole)
    texts |= {line for line in lines if len(line.strip()) >= MIN_LINE}
    out = {t.encode() for t in texts if t}
    for whole in wholes:
        raw = whole.encode()
        out |= {raw.hex().encode(), raw.hex().upper().encode()}
        out.update(_b64_fragments(raw, None))
        out.update(_b64_fragments(raw, b"-_"))
    return {f for f in out if f}


class Redactor:
    """The secrets of one command: every form of each value (bytes) and what replaces it."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        pairs: dict[bytes, bytes] = {}
        self._raw: list[str] = []
        for name, value in secrets:
            if value:
                self._raw.append(value)
            for form in forms(value):
                pairs.setdefault(form, f"<secret {name}>".encode())
        # Longest first: where two forms start at one position, the longer one is hidden whole.
        self._values = sorted(pairs, key=len, reverse=True)
        self._replacement = pairs
        self._pattern = re.compile(b"|".join(re.escape(v) for v in self._values)) if pairs else None
        # Forms share their first bytes (a PEM's 70 forms start in 14 ways): scanning for those
        # first and matching the forms only there is ~3x faster than the alternation alone.
        starts = sorted({v[:_PREFIX] for v in self._values}, key=len, reverse=True)
        self._starts = re.compile(b"|".join(re.escape(v) for v in starts)) if pairs else None
        self.max_len = len(self._values[0]) if self._values else 0

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """`text` (complete, e.g. a header line) with every secret hidden."""
        return self.whole(text.encode()).decode(errors="replace") if self else text

    def whole(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        out = bytearray()
        pos = 0
        while (m := self._search(data, pos)) is not None:
            out += data[pos : m.start()]
            out += self._replacement[m.group(0)]
            pos = m.end()
        return bytes(out + data[pos:]) if out else data

    def _search(self, data: bytes, pos: int) -> re.Match[bytes] | None:
        """The leftmost form at or after `pos` (the longest one there)."""
        assert self._starts is not None and self._pattern is not None
        while (c := self._starts.search(data, pos)) is not None:
            m = self._pattern.match(data, c.start())
            if m is not None:
                return m
            pos = c.start() + 1
        return None

    def leaks_into(self, text: str) -> bool:
        """Whether `text` (a directory name...) holds a secret in any of its forms, or any
        MIN_PART characters of one: a path cannot be redacted where it is used."""
        if self._pattern is not None and self._search(text.encode(), 0) is not None:
            return True
        for value in self._raw:
            if len(value) < MIN_PART:
                continue  # a short value would match too much; its whole forms were checked
            if any(text[i : i + MIN_PART] in value for i in range(len(text) - MIN_PART + 1)):
                return True
        return False

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)

    def _replace(self, value: bytes) -> bytes:
        return self._replacement[value]

    def _partial_at(self, buf: bytes, start: int) -> int:
        """The first position >= start where the rest of `buf` is a strict prefix of a form
        (it may continue in the next read); len(buf) when there is none.

        Per form, candidates are found with bytes.find on the form's first bytes (in C), so the
        cost stays near linear even for long forms (a PEM key's hex is kilobytes)."""
        n = len(buf)
        best = n
        for v in self._values:
            first = max(start, n - len(v) + 1)  # tails shorter than the form
            if first >= best:
                continue
            needle = v[:_NEEDLE]
            q = buf.find(needle, first)
            while q != -1 and q < best:
                if v.startswith(buf[q:]):
                    best = q
                    break
                q = buf.find(needle, q + 1)
            else:  # tails shorter than the needle (the find above cannot see them)
                for q in range(max(first, n - len(needle) + 1), best):
                    if v.startswith(buf[q:]):
                        best = q
                        break
        return best


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
            m = self._r._search(buf, pos)
            if m is not None and m.start() < hold:
                out += buf[pos : m.start()]
                out += self._r._replace(m.group(0))
                pos = m.end()
                continue
            out += buf[pos:hold]
            self._held = buf[hold:]
            return bytes(out)

    def flush(self) -> bytes:
        """The held tail (a strict prefix of a longer form may still hold a shorter one)."""
        held, self._held = self._held, b""
        return self._r.whole(held)
