"""Buildbot's Nightly time specification: the next time a (minute, hour, day, month, weekday)
pattern matches, in a time zone, correct across daylight-saving transitions.

Fields are an int, a list of ints, or "*" (Buildbot's convention). dayOfWeek 0 is MONDAY, as in
Buildbot (and Python's `weekday()`), not cron's Sunday. As in cron, when both dayOfMonth and
dayOfWeek are restricted a day matches if EITHER matches.

Daylight saving: each wall-clock time fires once. A time that does not exist on the
spring-forward day (02:30 when clocks jump 02:00 -> 03:00) fires at the instant it would have had
before the jump (03:30 local); a time that occurs twice on the fall-back day fires at its first
occurrence only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Field = int | list[int] | tuple[int, ...] | str

# name, lowest, highest
RANGES = {
    "minute": (0, 59),
    "hour": (0, 23),
    "dayOfMonth": (1, 31),
    "month": (1, 12),
    "dayOfWeek": (0, 6),
}
# Far enough for Feb 29 (every 4 years, skipping 2100): never loop forever on a legal pattern.
MAX_DAYS = 366 * 9


def parse_field(name: str, value: Any) -> tuple[frozenset[int] | None, str | None]:
    """(allowed values or None for "*", error message or None)."""
    low, high = RANGES[name]
    if value == "*":
        return None, None
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(values, list | tuple) or not values or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        return None, f"{name} must be an int, a non-empty list of ints or \"*\", not {value!r}"
    bad = [v for v in values if not low <= v <= high]
    if bad:
        return None, f"{name} values must be between {low} and {high}, not {bad[0]!r}"
    return frozenset(values), None


def parse_timezone(name: Any) -> tuple[dt.tzinfo | None, str | None]:
    if name is None:
        return None, None
    if not isinstance(name, str) or not name:
        return None, f"timezone must be a zone name such as 'Europe/Berlin', not {name!r}"
    try:
        return ZoneInfo(name), None
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"unknown timezone {name!r}: use an IANA zone name such as 'Europe/Berlin' or 'UTC'"


@dataclass(frozen=True)
class CronSpec:
    """A parsed Nightly pattern; `tz` None means the coordinator's local time."""

    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None
    tz: dt.tzinfo | None = None

    @classmethod
    def parse(cls, tz: Any = None, **fields: Any) -> tuple[CronSpec, list[str]]:
        """Parse minute/hour/dayOfMonth/month/dayOfWeek; returns the spec and every error."""
        errors: list[str] = []
        parsed: dict[str, frozenset[int] | None] = {}
        for name in RANGES:
            values, err = parse_field(name, fields.get(name, "*"))
            parsed[name] = values
            if err:
                errors.append(err)
        zone, err = parse_timezone(tz)
        if err:
            errors.append(err)
        spec = cls(parsed["minute"], parsed["hour"], parsed["dayOfMonth"], parsed["month"],
                   parsed["dayOfWeek"], zone)
        if not errors and spec.next_after(0.0) is None:
            errors.append("the day of month and month never occur together (such as 30 February)")
        return spec, errors

    def _day_matches(self, day: dt.date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        if self.days is None and self.weekdays is None:
            return True
        if self.days is not None and self.weekdays is not None:  # cron: either one
            return day.day in self.days or day.weekday() in self.weekdays
        if self.days is not None:
            return day.day in self.days
        assert self.weekdays is not None
        return day.weekday() in self.weekdays

    def _timestamp(self, naive: dt.datetime) -> float:
        # fold=0: a repeated wall time means its first occurrence; a skipped one maps to the
        # instant with the offset from before the jump. A naive datetime is local time.
        if self.tz is None:
            return naive.replace(fold=0).timestamp()
        return naive.replace(tzinfo=self.tz, fold=0).timestamp()

    def _local_date(self, ts: float) -> dt.date:
        return (dt.datetime.fromtimestamp(ts) if self.tz is None else dt.datetime.fromtimestamp(ts, self.tz)).date()

    def next_after(self, after: float) -> float | None:
        """The first matching instant strictly after `after` (a Unix timestamp), or None if the
        pattern never matches."""
        hours = sorted(self.hours) if self.hours is not None else list(range(24))
        minutes = sorted(self.minutes) if self.minutes is not None else list(range(60))
        # Start a day early: a skipped time may map to an instant on the following local day.
        day = self._local_date(after) - dt.timedelta(days=1)
        for _ in range(MAX_DAYS):
            if self._day_matches(day):
                best: float | None = None
                for h in hours:
                    for m in minutes:
                        ts = self._timestamp(dt.datetime(day.year, day.month, day.day, h, m))
                        if ts > after and (best is None or ts < best):
                            best = ts
                if best is not None:
                    return best
            day += dt.timedelta(days=1)
        return None
