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


async def test_a_reconfigured_capacity_applies_to_a_connected_worker() -> None:
    from coordinator.domain.workers.sessions import WorkerDecl, WorkerRegistry, WorkerSession
    from coordinator.storage.memory import MemoryStorage

    registry = WorkerRegistry(lambda: 0.0, MemoryStorage().workers)
    registry.configure([WorkerDecl("w1", "s", max_builds=1), WorkerDecl("w2", "s", max_builds=1)])
    poked: list[bool] = []
    for name, agent_limit in (("w1", 0), ("w2", 2)):
        await registry.connect(WorkerSession(name, 1, {}, lambda _m: None, lambda: 0.0, agent_limit=agent_limit))
    registry.on_change = lambda: poked.append(True)
    registry.configure([WorkerDecl("w1", "s", max_builds=4), WorkerDecl("w2", "s", max_builds=4, missing_timeout=9)])
    assert [registry.sessions[n].max_builds for n in ("w1", "w2")] == [4, 2]  # the agent's flag still lowers
    assert registry.sessions["w2"].missing_timeout == 9 and poked == [True]
    registry.configure([WorkerDecl("w1", "s", max_builds=4), WorkerDecl("w2", "s", max_builds=4, missing_timeout=9)])
    assert poked == [True]  # nothing changed: the dispatcher is not woken
