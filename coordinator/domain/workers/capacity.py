"""How many builds a connected worker runs at once, and why.

The configuration's `Worker(max_builds=N)` decides; an agent's `--max-builds` may only lower it
(the operator of a build machine may protect it, but an agent started without the flag must not
silently cap what the CI admin configured, as a default of 1 once did).
"""

from __future__ import annotations


def effective_capacity(configured: int, agent_limit: int) -> int:
    """The builds a worker runs at once: `configured`, lowered by the agent's limit when it
    sent one (0 = the agent left it to the configuration)."""
    return min(configured, agent_limit) if agent_limit > 0 else configured


def capacity_reason(configured: int, effective: int) -> str:
    """Where `effective` comes from, as `gantry workers` shows it."""
    if effective < configured:
        return f"agent --max-builds; config {configured}"
    return "config"
