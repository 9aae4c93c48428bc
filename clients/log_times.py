"""`gantry log --timestamps`: each line prefixed with when it was printed, as `docker logs
--timestamps` and `kubectl logs --timestamps` do (RFC 3339, UTC, milliseconds)."""

from __future__ import annotations

from datetime import UTC, datetime

# Width of a prefix, for lines whose time is unknown in a log that has times.
_BLANK = b" " * len("2000-01-01T00:00:00.000Z ")


def stamp(ms: int) -> bytes:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.").encode() + b"%03dZ " % (ms % 1000)


class LineStamper:
    """Prefixes each line of a log read in consecutive pieces with its time: that of the last
    mark at or before the line's first byte. A log without any times (stored before Gantry
    kept them) passes through unchanged."""

    def __init__(self) -> None:
        self._marks: list[tuple[int, int]] = []
        self._next = 0  # first mark not yet in effect
        self._ms: int | None = None
        self._line_start = True

    def feed(self, data: bytes, offset: int, times: tuple[tuple[int, int], ...]) -> bytes:
        self._marks.extend(times)
        out = bytearray()
        pos = offset
        for piece in _lines(data):
            if self._line_start:
                while self._next < len(self._marks) and self._marks[self._next][0] <= pos:
                    self._ms = self._marks[self._next][1]
                    self._next += 1
                if self._ms is not None:
                    out += stamp(self._ms)
                elif self._marks:
                    out += _BLANK
            out += piece
            pos += len(piece)
            self._line_start = piece.endswith(b"\n")
        del self._marks[: self._next]  # keep only what later lines may still need
        self._next = 0
        return bytes(out)


def _lines(data: bytes) -> list[bytes]:
    """Split after each b"\\n" (splitlines would also split at a progress bar's \\r)."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
