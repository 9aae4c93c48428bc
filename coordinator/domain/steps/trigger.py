"""The Trigger step (Buildbot's): start buildsets of Triggerable schedulers, optionally wait for
them; the step links the builds it started."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from coordinator.domain.changes.codebases import FIELDS
from coordinator.domain.model import PropertyValue, SourceStamp
from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result, worst
from coordinator.domain.steps.base import BuildStep, StepContext
from coordinator.domain.steps.trigger_port import Triggered

log = logging.getLogger(__name__)


class Trigger(BuildStep):
    """``Trigger(schedulerNames=["tests"], waitForFinish=True, set_properties={...},
    copy_properties=[...])``: submit a buildset to each named Triggerable scheduler.

    Source stamps are the triggering build's, with `got_revision` as the revision
    (updateSourceStamp, the default), or without a revision (alwaysUseLatest), or `sourceStamps`
    (a list of dicts with codebase/repository/branch/revision/project) when given. With
    waitForFinish the step's result is the worst of the triggered builds'; otherwise SUCCESS as
    soon as the buildsets are submitted.
    """

    name = "trigger"

    def __init__(
        self,
        schedulerNames: Sequence[str | Renderable] = (),
        *,
        waitForFinish: bool = False,
        alwaysUseLatest: bool = False,
        updateSourceStamp: bool | None = None,
        sourceStamps: Sequence[Mapping[str, Any]] | None = None,
        set_properties: Mapping[str, Any] | None = None,
        copy_properties: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.schedulerNames = list(schedulerNames) if not isinstance(schedulerNames, str) else [schedulerNames]
        self.waitForFinish = waitForFinish
        self.alwaysUseLatest = alwaysUseLatest
        self.sourceStamps = None if sourceStamps is None else [dict(s) for s in sourceStamps]
        self.set_properties = dict(set_properties or {})
        self.copy_properties = list(copy_properties or [])
        if not self.schedulerNames:
            self.errors.append("schedulerNames must name at least one Triggerable scheduler")
        if updateSourceStamp and alwaysUseLatest:
            self.errors.append("alwaysUseLatest and updateSourceStamp cannot both be True")
        if sourceStamps is not None and (updateSourceStamp or alwaysUseLatest):
            self.errors.append("sourceStamps cannot be combined with updateSourceStamp or alwaysUseLatest")
        self.updateSourceStamp = (
            updateSourceStamp if updateSourceStamp is not None
            else not alwaysUseLatest and sourceStamps is None
        )
        for stamp in self.sourceStamps or ():
            unknown = set(stamp) - {"codebase", *FIELDS}
            if unknown:
                self.errors.append(f"sourceStamps: unknown key(s) {', '.join(sorted(unknown))}")
        for flag, value in (("waitForFinish", waitForFinish), ("alwaysUseLatest", alwaysUseLatest)):
            if not isinstance(value, bool):
                self.errors.append(f"{flag} must be True or False, not {value!r}")
        if not all(isinstance(n, str) for n in self.copy_properties):
            self.errors.append("copy_properties must be a list of property names")

    def static_scheduler_names(self) -> list[str]:
        """The scheduler names known without a build (what checkconfig can verify)."""
        return [n for n in self.schedulerNames if isinstance(n, str)]

    def describe(self, done: bool, result: Result | None = None, ctx: StepContext | None = None) -> str:
        if self.description or self.descriptionDone:
            return super().describe(done, result, ctx)
        names = ", ".join(str(n) for n in self.schedulerNames)
        text = f"triggered {names}" if done else f"triggering {names}"
        return text if not done or result in (None, Result.SUCCESS) else f"{text} ({result.label})"  # type: ignore[union-attr]

    def sourcestamps(self, ctx: StepContext) -> list[SourceStamp]:
        if self.sourceStamps is not None:
            return [SourceStamp(**{k: str(v) for k, v in ctx.render(s).items()}) for s in self.sourceStamps]
        stamps = list(ctx.sourcestamps)
        if self.alwaysUseLatest:
            return [replace(s, revision="") for s in stamps]
        if self.updateSourceStamp:
            got = ctx.get_property("got_revision", {})
            got = got if isinstance(got, dict) else {"": got}
            stamps = [replace(s, revision=str(got[s.codebase])) if got.get(s.codebase) else s for s in stamps]
        return stamps

    def properties(self, ctx: StepContext) -> list[PropertyValue]:
        props = [
            PropertyValue(name, ctx.get_property(name), "Trigger")
            for name in self.copy_properties if ctx.has_property(name)
        ]
        props += [PropertyValue(name, ctx.render(value), "Trigger") for name, value in self.set_properties.items()]
        return props

    async def run(self, ctx: StepContext) -> Result:
        stamps = self.sourcestamps(ctx)
        props = self.properties(ctx)
        triggered: list[Triggered] = []
        try:
            for name in (str(ctx.render(n)) for n in self.schedulerNames):
                t = await ctx.trigger(name, stamps, props, wait=self.waitForFinish)
                triggered.append(t)
                if not self.waitForFinish:
                    for builder, req in t.requests.items():
                        await ctx.add_url(f"{builder}: build request {req}", f"buildrequests/{req}")
            if not self.waitForFinish:
                return Result.SUCCESS
            if not await self._wait(ctx, triggered):
                # As Buildbot: stopping the triggering build stops the builds it is waiting for
                # and cancels its triggered requests that have not started.
                for t in triggered:
                    await t.stop(f"the triggering build {ctx.builder} was stopped")
                await self._link(ctx, triggered)
                return Result.CANCELLED
        finally:
            for t in triggered:
                t.release()
        result = Result.SUCCESS
        for t in triggered:
            assert t.finished is not None
            result = worst(result, t.finished.result())
        return result

    async def _wait(self, ctx: StepContext, triggered: list[Triggered]) -> bool:
        """Link each triggered build as it starts; True once all are done, False if stopped."""
        while True:
            for t in triggered:
                t.progress.clear()  # before looking: a wake-up during the awaits below is kept
            await self._link(ctx, triggered)
            if all(t.finished is not None and t.finished.done() for t in triggered):
                return True
            if await ctx.unless_stopped(_any_set([t.progress for t in triggered])) is None:
                return False

    async def _link(self, ctx: StepContext, triggered: list[Triggered]) -> None:
        for t in triggered:
            while t.linked < len(t.builds):
                builder, number = t.builds[t.linked]
                t.linked += 1
                await ctx.add_url(f"{builder} #{number}", f"builders/{builder}/builds/{number}")


async def _any_set(events: list[asyncio.Event]) -> bool:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return True
