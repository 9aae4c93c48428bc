"""The lookups the coordinator's writes and reads validate with: a configured builder and a
stored build by name, or a NotFound that lists what exists."""

from __future__ import annotations

from collections.abc import Mapping

from coordinator.domain.auth import visibility
from coordinator.domain.builds.builders import Builder
from coordinator.domain.errors import NotFound
from coordinator.domain.model import Build
from coordinator.domain.ports import BuildReads


def find_builder(builders: Mapping[str, Builder], name: str) -> Builder:
    """A builder hidden from the caller (coordinator/domain/auth/visibility.py) is missing, and
    the list of what exists names only what the caller may see."""
    b = builders.get(name) if visibility.sees(name) else None
    if b is None:
        known = ", ".join(sorted(n for n in builders if visibility.sees(n))) or "none"
        raise NotFound(f"no builder named {name!r} (configured builders: {known})")
    return b


async def find_build(builds: BuildReads, builder: str, number: int) -> Build:
    build = await builds.get_build(builder, number) if visibility.sees(builder) else None
    if build is None:
        raise missing_build(builder, number)
    return build


def missing_build(builder: str, number: int) -> NotFound:
    """The one answer for a build that does not exist or that the caller may not see."""
    return NotFound(f"builder {builder!r} has no build number {number}")


def step_number(ref: str) -> int | None:
    """The step number a step reference (its name, or its number as ASCII digits) stands for;
    None for a name. "¹" or "٣" are names (str.isdigit says yes, int() disagrees or reads another
    script), and a number past any step's is a name too (no database integer overflows)."""
    if ref.isascii() and ref.isdigit() and len(ref) <= 9:
        return int(ref)
    return None
