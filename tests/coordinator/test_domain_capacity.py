"""The configured capacity decides; an agent's --max-builds may only lower it."""

from coordinator.domain.workers.capacity import capacity_reason, effective_capacity


def test_an_agent_without_a_limit_runs_as_many_as_configured() -> None:
    assert effective_capacity(4, 0) == 4
    assert capacity_reason(4, 4) == "config"


def test_an_agent_limit_only_lowers_the_configured_number() -> None:
    assert effective_capacity(4, 2) == 2
    assert capacity_reason(4, 2) == "agent --max-builds; config 4"
    assert effective_capacity(2, 8) == 2
    assert capacity_reason(2, 2) == "config"
