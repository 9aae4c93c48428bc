"""Buildbot's ``SVN`` source step: ``svn`` commands on the worker."""

from __future__ import annotations

from typing import Any

from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, StepContext, render_workdir
from coordinator.domain.steps.vcs_run import SourceFailed, WorkerCommands, option_errors, stamp_of

SVN_ENV = {"LC_ALL": "C"}  # svn's messages, which the step reads, in English


class SVN(BuildStep):
    """``SVN(repourl, mode="incremental", method=None, username=None, password=None,
    extra_args=None, preferLastChangedRev=False, alwaysUseLatest=False, codebase="",
    workdir="build", timeout=1200)`` — as in Buildbot.

    ``repourl`` is the URL to check out (use ``Interpolate("svn://host/repo/%(src::branch)s")``
    to follow the source stamp's branch). ``mode="full"`` with ``method`` ``clean`` (remove
    unversioned files), ``fresh`` (unversioned and ignored; the default) or ``clobber``.
    Sets ``got_revision`` (the revision checked out, or with ``preferLastChangedRev`` the last
    one that changed the tree). Give ``password`` as a ``Secret(...)``: it is redacted."""

    name = "svn"
    haltOnFailure = True

    def __init__(
        self,
        repourl: str | Renderable | None = None,
        *,
        mode: str = "incremental",
        method: str | None = None,
        username: str | Renderable | None = None,
        password: str | Renderable | None = None,
        extra_args: list[str] | None = None,
        preferLastChangedRev: bool = False,  # noqa: N803 - Buildbot's option names
        alwaysUseLatest: bool = False,  # noqa: N803
        codebase: str = "",
        workdir: str | Renderable = "build",
        timeout: float = 1200,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", "updating")
        kwargs.setdefault("descriptionDone", "update")
        super().__init__(**kwargs)
        self.repourl = repourl
        self.mode = mode
        self.method = method if method is not None or mode != "full" else "fresh"
        self.username = username
        self.password = password
        self.extra_args = list(extra_args or [])
        self.preferLastChangedRev = preferLastChangedRev
        self.alwaysUseLatest = alwaysUseLatest
        self.codebase = codebase
        self.workdir = workdir
        self.timeout = timeout
        self.errors.extend(option_errors(
            "SVN", repourl, mode, self.method, timeout, codebase,
            {"preferLastChangedRev": preferLastChangedRev, "alwaysUseLatest": alwaysUseLatest},
        ))
        if not isinstance(extra_args, list | tuple | None) or not all(isinstance(a, str) for a in self.extra_args):
            self.errors.append(f"extra_args must be a list of strings, not {extra_args!r}")

    async def run(self, ctx: StepContext) -> Result:
        stamp = stamp_of(ctx, self.codebase)
        revision = "" if self.alwaysUseLatest or stamp is None else stamp.revision
        repourl = str(ctx.render(self.repourl)).rstrip("/")
        svn = WorkerCommands(ctx, render_workdir(self.workdir, ctx), float(self.timeout), SVN_ENV)
        common = ["--non-interactive", "--no-auth-cache", *self.extra_args]
        if self.username is not None:
            common += ["--username", str(ctx.render(self.username))]
        if self.password is not None:
            common += ["--password", str(ctx.render(self.password))]
        rev = ["-r", revision] if revision else []
        try:
            fresh = self.mode == "full" and self.method == "clobber" or not await svn.exists(".svn")
            if not fresh:  # a checkout of another URL (another branch) is replaced
                url = await svn.output(["svn", "info", "--show-item", "url", *common], "svn info failed")
                fresh = url.rstrip("/") != repourl
            if fresh:
                await svn.clobber()
                await svn.check(["svn", "checkout", *common, *rev, repourl, "."], f"could not check out {repourl}")
            else:
                if self.mode == "full":
                    remove = ["--remove-unversioned", *(["--remove-ignored"] if self.method == "fresh" else [])]
                    await svn.check(["svn", "cleanup", *remove], "svn cleanup failed")
                    await svn.check(["svn", "revert", "--recursive", "."], "svn revert failed")
                await svn.check(["svn", "update", *common, *rev], f"could not update from {repourl}")
            item = "last-changed-revision" if self.preferLastChangedRev else "revision"
            got = await svn.output(["svn", "info", "--show-item", item, *common],
                                   "could not read the checked-out revision")
        except SourceFailed as exc:
            if ctx.interrupted:
                return Result.CANCELLED
            await ctx.write_log(str(exc))
            return Result.FAILURE
        ctx.set_property("got_revision", {self.codebase: got} if self.codebase else got, "SVN")
        return Result.SUCCESS
