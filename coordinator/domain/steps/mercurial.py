"""Buildbot's ``Mercurial`` source step: ``hg`` commands on the worker."""

from __future__ import annotations

from typing import Any

from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, StepContext, render_workdir
from coordinator.domain.steps.vcs_run import SourceFailed, WorkerCommands, option_errors, stamp_of

HG_ENV = {"HGPLAIN": "1"}  # no user configuration changes what the step reads
BRANCH_TYPES = ("dirname", "inrepo")


class Mercurial(BuildStep):
    """``Mercurial(repourl, mode="incremental", method=None, branchType="dirname",
    defaultBranch=None, clobberOnBranchChange=True, alwaysUseLatest=False, codebase="",
    workdir="build", timeout=1200)`` — as in Buildbot.

    ``branchType="dirname"``: a branch is a directory of the server (``repourl + branch``, the
    default, as Buildbot's); ``"inrepo"``: a named branch inside one repository (updated to the
    branch, or to the source stamp's revision). ``mode="full"`` with ``method`` ``clean``
    (remove untracked files), ``fresh`` (untracked and ignored; the default) or ``clobber``.
    Sets ``got_revision`` (the full node id)."""

    name = "hg"
    haltOnFailure = True

    def __init__(
        self,
        repourl: str | Renderable | None = None,
        *,
        mode: str = "incremental",
        method: str | None = None,
        branchType: str = "dirname",  # noqa: N803 - Buildbot's option names
        defaultBranch: str | None = None,  # noqa: N803
        clobberOnBranchChange: bool = True,  # noqa: N803
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
        self.branchType = branchType
        self.defaultBranch = defaultBranch
        self.clobberOnBranchChange = clobberOnBranchChange
        self.alwaysUseLatest = alwaysUseLatest
        self.codebase = codebase
        self.workdir = workdir
        self.timeout = timeout
        self.errors.extend(option_errors(
            "Mercurial", repourl, mode, self.method, timeout, codebase,
            {"clobberOnBranchChange": clobberOnBranchChange, "alwaysUseLatest": alwaysUseLatest},
        ))
        if branchType not in BRANCH_TYPES:
            self.errors.append(f"branchType must be 'dirname' or 'inrepo', not {branchType!r}")
        if defaultBranch is not None and not isinstance(defaultBranch, str):
            self.errors.append(f"defaultBranch must be a branch name, not {defaultBranch!r}")

    async def run(self, ctx: StepContext) -> Result:
        stamp = stamp_of(ctx, self.codebase)
        branch = (stamp.branch if stamp is not None and stamp.branch else "") or self.defaultBranch or ""
        revision = "" if self.alwaysUseLatest or stamp is None else stamp.revision
        repourl = str(ctx.render(self.repourl))
        if self.branchType == "dirname" and branch:
            repourl = f"{repourl.rstrip('/')}/{branch}"
        target = revision or (branch if self.branchType == "inrepo" and branch else "default")
        hg = WorkerCommands(ctx, render_workdir(self.workdir, ctx), float(self.timeout), HG_ENV)
        try:
            fresh = self.mode == "full" and self.method == "clobber" or not await hg.exists(".hg")
            if not fresh and self.branchType == "inrepo" and branch and self.clobberOnBranchChange:
                current = await hg.output(["hg", "identify", "--branch"], "could not read the current branch")
                fresh = current != branch
            if fresh:
                await hg.clobber()
                await hg.check(["hg", "clone", "--noupdate", repourl, "."], f"could not clone {repourl}")
            else:
                if self.mode == "full":
                    purge = ["hg", "--config", "extensions.purge=", "purge"]
                    await hg.check([*purge, *(["--all"] if self.method == "fresh" else [])], "hg purge failed")
                await hg.check(["hg", "pull", repourl], f"could not pull from {repourl}")
            if (await hg.run(["hg", "log", "-r", target, "--template", "{node}"])).rc != 0:
                raise SourceFailed(f"revision or branch {target!r} does not exist in the repository {repourl}")
            await hg.check(["hg", "update", "--clean", "-r", target], f"could not update to {target}")
            node = await hg.output(["hg", "log", "-r", ".", "--template", "{node}"],
                                   "could not read the checked-out revision")
        except SourceFailed as exc:
            if ctx.interrupted:
                return Result.CANCELLED
            await ctx.write_log(str(exc))
            return Result.FAILURE
        ctx.set_property("got_revision", {self.codebase: node} if self.codebase else node, "Mercurial")
        return Result.SUCCESS
