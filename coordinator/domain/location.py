"""Where in the user's configuration an object was created (for FILE:LINE in config errors)."""

from __future__ import annotations

import inspect
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def caller_location(depth: int = 2) -> tuple[str, int]:
    """File and line of the configuration code that created an object (for config errors)."""
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            assert frame is not None
            frame = frame.f_back
        # Skip frames inside this package (subclass __init__ chains) to reach the user's file.
        while frame is not None and frame.f_code.co_filename.startswith((_PACKAGE_DIR, "<")):
            frame = frame.f_back
        if frame is None:
            return "<unknown>", 0
        return frame.f_code.co_filename, frame.f_lineno
    finally:
        del frame
