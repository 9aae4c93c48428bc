"""What each scenario measures: metric names, units, targets and Buildbot's reference numbers.

Shared by the Gantry scenarios, the Buildbot scenarios and the report, so the three agree on
names. Reference values are the issue's Buildbot numbers (measured elsewhere); the harness can
also measure Buildbot side by side with ``--buildbot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetricDef:
    scenario: str
    metric: str
    unit: str
    higher_is_better: bool
    target: float | None = None  # the target for Gantry
    ref: float | None = None  # Buildbot reference value from the issue

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario, self.metric)

    def meets(self, value: float | None) -> bool | None:
        if value is None or self.target is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        op = "≥" if self.higher_is_better else "≤"
        return f"{op} {self.target:g}"

    def advantage(self, gantry: float | None, other: float | None) -> float | None:
        """How many times better Gantry is than `other` (>1: Gantry better)."""
        if gantry is None or other is None or gantry <= 0 or other <= 0:
            return None
        return gantry / other if self.higher_is_better else other / gantry


METRICS: list[MetricDef] = [
    MetricDef("latency", "p50 submit→finished", "ms", False, target=50, ref=309),
    MetricDef("latency", "p95 submit→finished", "ms", False),
    MetricDef("throughput", "builds/s", "builds/s", True, target=50, ref=6),
    MetricDef("throughput", "coordinator CPU/build", "ms", False, ref=135),
    MetricDef("log", "log throughput", "MB/s", True, target=40, ref=4.3),
    MetricDef("log", "coordinator peak RSS", "MiB", False),
    MetricDef("idle_workers", "idle RSS (0 workers)", "MiB", False, ref=79),
    MetricDef("idle_workers", "RSS per idle worker", "KiB", False, target=60, ref=43),
    MetricDef("subscribers", "delivered complete", "%", True, target=100),
    MetricDef("subscribers", "lag p50", "ms", False),
    MetricDef("subscribers", "lag p99", "ms", False),
    MetricDef("subscribers", "RSS per subscriber", "KiB", False),
    # A lost worker connection: reset → every running build re-attached (agent backoff included).
    MetricDef("reattach", "re-attach, 1 build", "ms", False),
    MetricDef("reattach", "re-attach, N builds", "ms", False),
    MetricDef("reattach", "extra bytes per re-attach", "B", False),
    # A coordinator SIGKILLed under running builds: kill → every build re-attached on the new one.
    MetricDef("reattach", "restart → re-attached, 1 build", "ms", False),
    MetricDef("reattach", "restart → re-attached, N builds", "ms", False),
    # Coordinator SIGKILLs during many builds: what had to run again, and what must never happen.
    MetricDef("faults", "builds re-run after a kill", "builds", False),
    MetricDef("faults", "side effects twice", "", False, target=0),
]
BY_KEY = {m.key: m for m in METRICS}
SCENARIOS = ["latency", "throughput", "log", "idle_workers", "subscribers", "reattach", "faults"]


@dataclass
class Measurement:
    """One measured value (or a failure), with free-text notes."""

    scenario: str
    metric: str
    value: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    scenario: str
    values: dict[str, float] = field(default_factory=dict)  # metric -> value
    notes: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"
