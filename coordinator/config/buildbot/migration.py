"""What a load learnt about a Buildbot configuration: problems for checkconfig, notes for the
user, and the migration report of ``gantry checkconfig --from-buildbot``."""

from __future__ import annotations

import textwrap
from pathlib import Path

from coordinator.config.buildbot.log import DIFFERENT, IGNORED, KINDS, SAME, UNSUPPORTED, Call, Entry, MigrationLog
from coordinator.config.buildbot.native import NotWritable, native_source
from coordinator.config.problems import ConfigProblem

WIDTH = 80  # the report is read in a terminal
HEADINGS = {
    SAME: "Maps one-to-one",
    DIFFERENT: "Maps with a different meaning",
    IGNORED: "Accepted, meaningless for Gantry",
    UNSUPPORTED: "Not supported",
}


class Migration:
    def __init__(self, path: Path, log: MigrationLog, native: Call | None) -> None:
        self.path = path
        self.log = log
        self.native = native  # None: not a BuildmasterConfig dict

    @property
    def is_buildbot(self) -> bool:
        """The file used the compatibility layer (its namespaces or a BuildmasterConfig dict)."""
        return self.native is not None or bool(self.log.entries)

    def where(self, entry: Entry) -> tuple[str, int]:
        same = Path(entry.file).resolve() == self.path.resolve() if entry.file.startswith("/") else False
        return (str(self.path) if same else entry.file), entry.line

    def problems(self) -> list[ConfigProblem]:
        entries = sorted(self.log.of_kind(UNSUPPORTED), key=lambda e: e.line)
        return [ConfigProblem(*self.where(e), f"not supported: {e.text}") for e in entries]

    def notes(self) -> list[str]:
        """One line per option whose meaning differs or which is ignored."""
        out = []
        for kind in (DIFFERENT, IGNORED):
            for e in sorted(self.log.of_kind(kind), key=lambda e: e.line):
                file, line = self.where(e)
                out.append(f"{file}:{line}: note: {e.text}")
        return out

    def report(self) -> str:
        lines = [f"Migration report for {self.path}", ""]
        for kind in KINDS:
            entries = sorted(self.log.of_kind(kind), key=lambda e: e.line)
            lines.append(f"{HEADINGS[kind]} ({len(entries) if kind != SAME else len(_grouped(entries))}):")
            if kind == SAME:
                items = [f"{text} (line{'s' if len(nums) > 1 else ''} {', '.join(map(str, nums))})"
                         for text, nums in _grouped(entries).items()]
            else:
                items = [f"{self.where(e)[1]}: {e.text}" for e in entries]
            lines += [textwrap.fill(item, WIDTH, initial_indent="  ", subsequent_indent="      ",
                                    break_on_hyphens=False) for item in items]
            if not entries:
                lines.append("  (none)")
            lines.append("")
        return "\n".join(lines)

    def native_source(self) -> str:
        """The Gantry-native configuration (raises NotWritable for values it cannot write)."""
        if self.native is None:
            raise NotWritable(["the file assigns `config = MasterConfig(...)`, not a BuildmasterConfig dict"])
        return native_source(self.native, self.path.name)


def _grouped(entries: list[Entry]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for e in entries:
        out.setdefault(e.text, [])
        if e.line not in out[e.text]:
            out[e.text].append(e.line)
    return out
