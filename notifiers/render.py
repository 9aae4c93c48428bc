"""The facts a message is made of, and the default mail templates.

Templates use :class:`string.Template` (``$field`` / ``${field}``); every field of
:meth:`MessageContext.fields` is available. Text fields are plain; the ``*_html`` variants are
HTML-escaped blocks for the HTML part.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from string import Template
from typing import Any

from coordinator.domain.model import Build, CaseResult
from coordinator.domain.results import Result

LOG_TAIL_LINES = 20
FAILING_TESTS = 20  # failing tests listed in a message (at the cap, the message says so)


@dataclass
class MessageContext:
    """One finished (or started) build with what a message needs from around it."""

    build: Build
    previous: Result | None = None
    failing_step: str = ""
    log_tail: list[str] = field(default_factory=list)
    failing_tests: list[CaseResult] = field(default_factory=list)  # the build's, at most FAILING_TESTS
    url: str = ""  # a link to the build, or "" (then the CLI command is shown)
    event_id: int = 0  # the event the message is about (orders a reporter's states)

    @property
    def result_name(self) -> str:
        return "" if self.build.result is None else self.build.result.name

    def link(self) -> str:
        return self.url or f"gantry build {self.build.builder} {self.build.number}"

    def fields(self, title: str = "Gantry") -> dict[str, Any]:
        b = self.build
        changes = "\n".join(
            f"  {c.revision[:12]} by {c.author}"
            + (f" on {c.branch}" if c.branch else "")
            + ("\n" + "\n".join("      " + line for line in c.comments.splitlines()) if c.comments else "")
            for c in b.changes
        ) or "  (no changes)"
        changes_html = "".join(
            f"<li><code>{html.escape(c.revision[:12])}</code> by {html.escape(c.author)}"
            + (f"<pre>{html.escape(c.comments)}</pre>" if c.comments else "") + "</li>"
            for c in b.changes
        ) or "<li>(no changes)</li>"
        authors = ", ".join(dict.fromkeys(c.author for c in b.changes))
        tail = "\n".join(self.log_tail)
        tests = "\n".join(
            f"  {c.full_name}" + (f": {c.message}" if c.message else "") for c in self.failing_tests
        )
        capped = len(self.failing_tests) >= FAILING_TESTS
        tests_head = "Failing tests" + (f" (the first {FAILING_TESTS})" if capped else "")
        failing = (
            f"Failing step: {self.failing_step}\n"
            + (f"{tests_head}:\n{tests}\n" if tests else "")
            + (f"Last lines of its log:\n{tail}\n" if tail else "")
        ) if self.failing_step else ""
        failing_html = (
            f"<p>Failing step: <b>{html.escape(self.failing_step)}</b></p>"
            + (f"<p>{tests_head}:</p><pre>{html.escape(tests)}</pre>" if tests else "")
            + (f"<pre>{html.escape(tail)}</pre>" if tail else "")
        ) if self.failing_step else ""
        link = self.link()
        link_html = (f'<a href="{html.escape(link)}">{html.escape(link)}</a>'
                     if self.url else f"<code>{html.escape(link)}</code>")
        return {
            "title": title,
            "builder": b.builder,
            "number": b.number,
            "result": self.result_name or "RUNNING",
            "result_lower": (self.result_name or "running").lower(),
            "previous": "" if self.previous is None else self.previous.name,
            "state": b.state_string,
            "worker": b.worker,
            "reason": b.reason,
            "buildset_id": b.buildset_id,
            "authors": authors,
            "changes": changes,
            "changes_html": changes_html,
            "failing_step": self.failing_step,
            "log_tail": tail,
            "failing_tests": tests,
            "failing": failing,
            "failing_html": failing_html,
            "url": link,
            "link_html": link_html,
        }


DEFAULT_SUBJECT = "$title: $result_lower in $builder #$number"

DEFAULT_TEXT = """\
Build $builder #$number: $result
State: $state
Worker: $worker
Reason: $reason

Changes:
$changes

$failing
Build: $url
"""

DEFAULT_HTML = """\
<html><body>
<h3>Build $builder #$number: $result</h3>
<p>State: $state<br>Worker: $worker<br>Reason: $reason</p>
<p>Changes:</p><ul>$changes_html</ul>
$failing_html
<p>Build: $link_html</p>
</body></html>
"""

DEFAULT_BUILDSET_SUBJECT = "$title: buildset $buildset_id $result_lower"

DEFAULT_BUILDSET_ITEM = "  $builder #$number: $result ($state) $url\n"


def expand(template: str, values: dict[str, Any]) -> str:
    """Fill a template; an unknown $field is left as written, never an error at send time."""
    return Template(template).safe_substitute(values)
