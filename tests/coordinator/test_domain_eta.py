"""The per-step ETA estimator and expected starts of queued requests, on synthetic history."""

from __future__ import annotations

from coordinator.domain.builds.eta import BuilderHistory, EtaEstimator, expected_starts
from coordinator.domain.events import Event
from coordinator.domain.model import Build, Step, StepSample
from tests.coordinator.fakes import FakeClock


def _samples(*builds: dict[str, float]) -> list[StepSample]:
    out = []
    for number, steps in enumerate(builds, start=1):
        total = sum(steps.values())
        out += [StepSample(number, total, name, d) for name, d in steps.items()]
    return out


def _build(started: float, *steps: tuple[str, float | None, float | None]) -> Build:
    return Build(
        id=1, builder="b", number=9, worker="w", build_request_id=1, buildset_id=1, started_at=started,
        steps=[Step(id=i, build_id=1, number=i, name=n, started_at=s, finished_at=f)
               for i, (n, s, f) in enumerate(steps)],
    )


class History:
    def __init__(self, samples: list[StepSample]) -> None:
        self.samples = samples
        self.queries: list[tuple[str, int]] = []

    async def recent_step_durations(self, builder: str, builds: int) -> list[StepSample]:
        self.queries.append((builder, builds))
        return list(self.samples)


def test_median_per_step_name() -> None:
    h = BuilderHistory.from_samples(_samples({"a": 1, "b": 10}, {"a": 3, "b": 20}, {"a": 100, "b": 30}))
    assert h.expected("a") == 3
    assert h.expected("b") == 20
    assert h.build_duration == 23  # median of 11, 23, 130


def test_running_step_counts_its_elapsed_time() -> None:
    h = BuilderHistory.from_samples(_samples({"a": 10, "b": 20, "c": 5}))
    build = _build(100.0, ("a", 100.0, 108.0), ("b", 108.0, None), ("c", None, None))
    # b expected 20, has run 7 -> 13 left; c 5 more.
    assert h.eta(build, now=115.0) == 115.0 + 13 + 5
    # b overran its estimate: nothing is left of it, c still is.
    assert h.eta(build, now=200.0) == 205.0


def test_unseen_step_falls_back_to_the_typical_step() -> None:
    h = BuilderHistory.from_samples(_samples({"a": 2, "b": 4, "c": 6}))
    assert h.expected("new") == 4
    build = _build(0.0, ("a", 0.0, 2.0), ("new", None, None))
    assert h.eta(build, now=2.0) == 6.0


def test_no_history_no_eta() -> None:
    h = BuilderHistory.from_samples([])
    assert h.empty and h.expected("a") is None
    assert h.eta(_build(0.0, ("a", 0.0, None)), now=1.0) is None


def test_build_without_steps_yet_uses_the_median_build() -> None:
    h = BuilderHistory.from_samples(_samples({"a": 10}, {"a": 30}, {"a": 20}))
    assert h.eta(_build(100.0), now=101.0) == 120.0
    assert h.eta(_build(100.0), now=500.0) == 500.0  # late: never in the past


def test_finished_build_has_no_eta() -> None:
    h = BuilderHistory.from_samples(_samples({"a": 1}))
    build = _build(0.0, ("a", 0.0, 1.0))
    build.finished_at = 1.0
    assert h.eta(build, now=1.0) is None


async def test_estimator_caches_until_a_build_of_the_builder_finishes() -> None:
    clock = FakeClock(start=50.0)
    source = History(_samples({"a": 10}))
    est = EtaEstimator(source, clock.now, builds=10)
    build = _build(45.0, ("a", 45.0, None))
    first = await est.estimate(build)
    assert first.eta == 55.0 and first.step_durations == {"a": 10}
    for _ in range(5):
        await est.estimate(build)
    est.on_event(Event(kind="step.finished", at=0, builder="b"))
    est.on_event(Event(kind="build.finished", at=0, builder="other"))
    await est.estimate(build)
    assert source.queries == [("b", 10)]  # one query, whatever was asked or published

    source.samples = _samples({"a": 30})
    est.on_event(Event(kind="build.finished", at=0, builder="b"))
    again = await est.estimate(build)
    assert source.queries == [("b", 10), ("b", 10)]
    assert again.eta == 75.0


async def test_estimator_does_not_cache_an_answer_overtaken_by_a_finished_build() -> None:
    clock = FakeClock(start=0.0)
    est: EtaEstimator

    class Racing(History):
        async def recent_step_durations(self, builder: str, builds: int) -> list[StepSample]:
            result = await super().recent_step_durations(builder, builds)
            est.on_event(Event(kind="build.finished", at=0, builder=builder))  # lands mid-read
            return result

    source = Racing(_samples({"a": 1}))
    est = EtaEstimator(source, clock.now)
    await est.history("b")
    await est.history("b")
    assert len(source.queries) == 2


def test_expected_starts_slots_free_at_running_etas() -> None:
    starts = expected_starts([11, 12, 13], worker_slots=2, running_build_etas=[130.0, 110.0],
                             estimated_build_duration=50.0, now=100.0)
    # Slot B frees at 110 -> 11 until 160; slot A at 130 -> 12 until 180; 13 takes B at 160.
    assert starts == {11: 110.0, 12: 130.0, 13: 160.0}


def test_expected_starts_free_slots_start_now_and_late_etas_are_now() -> None:
    starts = expected_starts([1, 2, 3], worker_slots=3, running_build_etas=[90.0],
                             estimated_build_duration=lambda rid: 10.0 * rid, now=100.0)
    assert starts == {1: 100.0, 2: 100.0, 3: 100.0}
    starts = expected_starts([1, 2], worker_slots=1, running_build_etas=[],
                             estimated_build_duration=lambda rid: 10.0 * rid, now=100.0)
    assert starts == {1: 100.0, 2: 110.0}


def test_expected_starts_unknown_durations_stop_the_estimate() -> None:
    assert expected_starts([1, 2], worker_slots=1, running_build_etas=[None],
                           estimated_build_duration=None, now=0.0) == {}
    assert expected_starts([1, 2], worker_slots=1, running_build_etas=[None],
                           estimated_build_duration=5.0, now=0.0) == {1: 5.0, 2: 10.0}
    assert expected_starts([1, 2, 3], worker_slots=1, running_build_etas=[],
                           estimated_build_duration=None, now=0.0) == {1: 0.0}
    assert expected_starts([1], worker_slots=0, running_build_etas=[], estimated_build_duration=1.0,
                           now=0.0) == {}
