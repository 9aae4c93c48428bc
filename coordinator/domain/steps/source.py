"""Source steps: check out the build's source on the worker, with Buildbot's names and meaning.

The worker stays dumb: the step runs plain ``git`` commands there through ``run_command``, all
into the step's ``stdio`` log, and decides from their exit codes.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import AsyncIterator
from typing import Any

from coordinator.domain.model import SourceStamp
from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, StepContext, render_workdir
from coordinator.domain.steps.logs import OutputCollector
from coordinator.domain.workers.commands import Finished, TransferError

MODES = {"incremental": (None,), "full": ("clean", "fresh", "clobber")}
# Never wait for a password prompt on the worker; a build has no one to type it.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}
SOURCE = "Git"
PATCH_FILE = "gantry-try.patch"  # in the checkout's .git directory: never part of the tree
PATCH_ARTIFACT = "try.patch"  # the build's copy of a try job's patch


class GitFailed(Exception):
    """A git command failed; the message is what the user reads in the log."""


class Git(BuildStep):
    """Buildbot's ``Git`` step.

    ``repourl`` (URL or path on the worker), ``branch`` (the source stamp's branch wins; else
    this, default ``master``), ``mode`` ``incremental`` (keep the tree, update it) or ``full``
    with ``method`` ``clean`` (remove untracked files, keep ignored ones), ``fresh`` (remove
    ignored files too; the default) or ``clobber`` (remove the directory and clone again),
    ``shallow`` (True for depth 1, or a depth), ``submodules``,
    ``alwaysUseLatest`` (ignore the source stamp's revision), ``codebase`` (which source stamp),
    ``workdir`` (default ``build``), ``retryFetch``, ``timeout``. Sets ``got_revision``."""

    name = "git"
    haltOnFailure = True  # as Buildbot's Source steps: no point building without the source

    def __init__(
        self,
        repourl: str | Renderable | None = None,
        branch: str | Renderable = "master",
        *,
        mode: str = "incremental",
        method: str | None = None,
        shallow: bool | int = False,
        submodules: bool = False,
        alwaysUseLatest: bool = False,
        codebase: str = "",
        workdir: str | Renderable = "build",
        retryFetch: bool = False,
        timeout: float = 1200,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", "updating")
        kwargs.setdefault("descriptionDone", "update")
        super().__init__(**kwargs)
        self.repourl = repourl
        self.branch = branch
        self.mode = mode
        self.method = method if method is not None or mode != "full" else "fresh"
        self.shallow = shallow
        self.submodules = submodules
        self.alwaysUseLatest = alwaysUseLatest
        self.codebase = codebase
        self.workdir = workdir
        self.retryFetch = retryFetch
        self.timeout = timeout
        self.errors.extend(self._option_errors())

    def _option_errors(self) -> list[str]:
        problems = []
        if not isinstance(self.repourl, str | Renderable) or self.repourl == "":
            problems.append(f"Git needs repourl= (a URL or a path on the worker), not {self.repourl!r}")
        if self.mode not in MODES:
            problems.append(f"mode must be 'incremental' or 'full', not {self.mode!r}")
        elif self.method not in MODES[self.mode]:
            allowed = " or ".join(repr(m) for m in MODES[self.mode] if m)
            problems.append(
                f"method {self.method!r} is not valid with mode={self.mode!r}"
                + (f" (use {allowed})" if allowed else " (give no method)")
            )
        if not isinstance(self.shallow, bool | int) or (
            not isinstance(self.shallow, bool) and self.shallow < 1
        ):
            problems.append(f"shallow must be True, False or a depth >= 1, not {self.shallow!r}")
        for flag in ("submodules", "alwaysUseLatest", "retryFetch"):
            if not isinstance(getattr(self, flag), bool):
                problems.append(f"{flag} must be True or False, not {getattr(self, flag)!r}")
        if not isinstance(self.codebase, str):
            problems.append(f"codebase must be a string, not {self.codebase!r}")
        if not isinstance(self.timeout, int | float) or self.timeout < 0:
            problems.append(f"timeout must be a number of seconds >= 0, not {self.timeout!r}")
        return problems

    # -- the run ---------------------------------------------------------------------------------

    async def run(self, ctx: StepContext) -> Result:
        stamp = self._stamp(ctx)
        repourl = str(ctx.render(self.repourl))
        branch = str((stamp.branch if stamp is not None and stamp.branch else None) or ctx.render(self.branch))
        revision = "" if self.alwaysUseLatest or stamp is None else (stamp.revision or "")
        workdir = render_workdir(self.workdir, ctx)
        run = _GitRun(self, ctx, repourl, workdir)
        try:
            await run.check_remote(branch)
            if self.mode == "full" and self.method == "clobber" or not await run.has_repo():
                await run.clobber()
                await run.clone(branch)
            else:
                if self.mode == "full" and self.method in ("clean", "fresh"):
                    await run.clean(ignored=self.method == "fresh")
                await run.fetch(branch)
            await run.checkout(branch, revision)
            if self.submodules:
                await run.update_submodules(clean=self.mode == "full" and self.method in ("clean", "fresh"))
            sha = await run.head()
            if stamp is not None and stamp.patch:
                await run.apply_patch(stamp)
        except GitFailed as exc:
            if ctx.interrupted:
                return Result.CANCELLED
            await ctx.write_log(str(exc))
            return Result.FAILURE
        ctx.set_property("got_revision", {self.codebase: sha} if self.codebase else sha, SOURCE)
        return Result.SUCCESS

    def _stamp(self, ctx: StepContext) -> SourceStamp | None:
        for ss in ctx.sourcestamps:
            if ss.codebase == self.codebase:
                return ss
        return None


async def _keep_patch(ctx: StepContext, body: bytes) -> None:
    try:
        store = ctx.artifacts
    except RuntimeError:
        return  # a coordinator without an artifact store (in-process tests)
    sink = store.artifact_sink(ctx.builder, ctx.build_number, PATCH_ARTIFACT)
    try:
        await sink.write(body)
    except BaseException:
        await sink.abort()
        raise
    await sink.commit()
    await ctx.add_artifact(PATCH_ARTIFACT, len(body), hashlib.sha256(body).hexdigest())


class _GitRun:
    """The git commands of one Git step run, each checked; a failure raises GitFailed."""

    def __init__(self, step: Git, ctx: StepContext, repourl: str, workdir: str) -> None:
        self.step = step
        self.ctx = ctx
        self.repourl = repourl
        self.workdir = workdir
        shallow = step.shallow
        self.depth = 0 if shallow is False else 1 if shallow is True else int(shallow)

    async def _run(self, argv: list[str], *, workdir: str | None = None,
                   collect: OutputCollector | None = None) -> Finished:
        finished = await self.ctx.run_command(
            argv, workdir=self.workdir if workdir is None else workdir, env=GIT_ENV,
            timeout=self.step.timeout, collect=collect,
        )
        if self.ctx.interrupted or finished.reason == "interrupted":
            raise GitFailed("interrupted")
        if finished.reason:
            raise GitFailed(f"{shlex.join(argv)}: {finished.reason}")
        return finished

    async def _git(self, *args: str, what: str, collect: OutputCollector | None = None) -> Finished:
        finished = await self._run(["git", *args], collect=collect)
        if finished.rc != 0:
            raise GitFailed(f"{what} (git exited with code {finished.rc})")
        return finished

    async def check_remote(self, branch: str) -> None:
        """Fail early, with a plain message, when the repository or branch does not exist."""
        finished = await self._run(["git", "ls-remote", "--exit-code", self.repourl, branch], workdir=".")
        if finished.rc == 2:
            raise GitFailed(f"branch {branch!r} does not exist in the repository {self.repourl}")
        if finished.rc != 0:
            raise GitFailed(f"the repository {self.repourl} does not exist or cannot be read")

    async def has_repo(self) -> bool:
        finished = await self._run(["test", "-d", ".git"])
        return finished.rc == 0

    async def clobber(self) -> None:
        finished = await self._run(["rm", "-rf", "--", self.workdir], workdir=".")
        if finished.rc != 0:
            raise GitFailed(f"could not remove the directory {self.workdir!r} on the worker")

    async def clone(self, branch: str) -> None:
        args = ["clone", "--branch", branch]
        if self.depth:
            args += ["--depth", str(self.depth)]
        await self._git(*args, self.repourl, ".", what=f"could not clone {self.repourl}")

    async def clean(self, ignored: bool) -> None:
        await self._git("clean", "-f", "-f", "-d", *(["-x"] if ignored else []), what="git clean failed")

    async def fetch(self, branch: str) -> None:
        args = ["fetch", "-f", "-t", *(["--depth", str(self.depth)] if self.depth else []), self.repourl, branch]
        try:
            await self._git(*args, what=f"could not fetch {branch!r} from {self.repourl}")
        except GitFailed:
            if not self.step.retryFetch or self.ctx.interrupted:
                raise
            await self._git(*args, what=f"could not fetch {branch!r} from {self.repourl} (retried)")

    async def checkout(self, branch: str, revision: str) -> None:
        target = "FETCH_HEAD"
        if revision:
            if (await self._run(["git", "cat-file", "-e", f"{revision}^{{commit}}"])).rc != 0:
                # Not here (a shallow clone, or a commit of another branch): fetch it by name.
                finished = await self._run(["git", "fetch", "-f", self.repourl, revision])
                if finished.rc != 0:
                    raise GitFailed(f"revision {revision} does not exist in the repository {self.repourl}")
            target = revision
        elif (await self._run(["git", "rev-parse", "-q", "--verify", "FETCH_HEAD"])).rc != 0:
            target = "HEAD"  # fresh clone: HEAD is the branch
        await self._git("reset", "--hard", target, "--", what=f"could not check out {revision or branch}")
        await self._git("checkout", "-B", branch, what=f"could not check out the branch {branch!r}")

    async def update_submodules(self, clean: bool) -> None:
        # Submodules named by a local path or file:// URL need the file transport allowed
        # (git >= 2.38.1 refuses it by default).
        allow = ["-c", "protocol.file.allow=always"]
        await self._git(*allow, "submodule", "sync", "--recursive", what="git submodule sync failed")
        await self._git(*allow, "submodule", "update", "--init", "--recursive", "--force",
                        what="could not check out the submodules")
        if clean:
            await self._git("submodule", "foreach", "--recursive", "git clean -f -f -d",
                            what="git clean of the submodules failed")

    async def apply_patch(self, stamp: SourceStamp) -> None:
        """A try job's patch: kept as the build's artifact "try.patch" (downloadable even when it
        does not apply), sent next to the checkout and applied with `git apply --index` (staged:
        the next build's `git reset --hard` removes the files it added)."""
        body = base64.b64decode(stamp.patch)
        await _keep_patch(self.ctx, body)
        dest = f"{self.workdir.rstrip('/')}/.git/{PATCH_FILE}"

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        try:
            await self.ctx.download(chunks, dest)
        except TransferError as exc:
            raise GitFailed(f"could not send the patch to the worker: {exc}") from None
        by = f" by {stamp.patch_author}" if stamp.patch_author else ""
        await self.ctx.write_log(f"applying the try patch{by} ({len(body)} bytes) with git apply\n")
        collector = OutputCollector(64 * 1024)
        finished = await self._run(
            ["git", "apply", "--index", "--binary", f".git/{PATCH_FILE}"], collect=collector
        )
        if finished.rc != 0:
            said = (collector.stderr or collector.stdout).strip()
            raise GitFailed(f"the patch does not apply to {stamp.revision or 'the branch head'}:\n{said}")
        self.ctx.set_state("update (patched)")

    async def head(self) -> str:
        collector = OutputCollector(4096)
        await self._git("rev-parse", "HEAD", what="could not read the checked-out revision", collect=collector)
        return collector.stdout.strip()
