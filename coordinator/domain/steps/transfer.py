"""File transfer steps with Buildbot's names and options: FileUpload, DirectoryUpload and
FileDownload. Worker paths are relative to the step's workdir (default "build") unless absolute;
coordinator paths (masterdest, mastersrc) are relative to the coordinator's data directory.
Without masterdest an upload becomes a build artifact, listed on the build and downloadable."""

from __future__ import annotations

import posixpath
from typing import Any

from coordinator.domain.ports import ByteSink
from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, StepContext, _relative
from coordinator.domain.workers.commands import TransferError


class _Transfer(BuildStep):
    """What the three steps share: maxsize, mode and workdir checking, and worker paths."""

    def __init__(
        self, *, maxsize: int | None = None, mode: int | None = None, workdir: str | Renderable = "build",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.maxsize = maxsize
        self.mode = mode
        self.workdir = workdir
        if maxsize is not None and (not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize <= 0):
            self.errors.append(f"maxsize must be a number of bytes > 0 (or None), not {maxsize!r}")
        if mode is not None and (not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777):
            self.errors.append(f"mode must be permission bits such as 0o644 (or None), not {mode!r}")
        if isinstance(workdir, str) and not _relative(workdir) or not isinstance(workdir, str | Renderable):
            self.errors.append(f"workdir must be a relative path inside the build directory, not {workdir!r}")

    def _required(self, option: str, value: Any) -> None:
        if not isinstance(value, str | Renderable) or (isinstance(value, str) and not value.strip()):
            self.errors.append(f"{option} must be a non-empty path, not {value!r}")

    def worker_path(self, ctx: StepContext, path: Any) -> str:
        """`path` rendered, under the step's workdir unless absolute."""
        rendered = str(ctx.render(path))
        if rendered.startswith("/"):
            return rendered
        return posixpath.join(str(ctx.render(self.workdir)), rendered)

    def describe(self, done: bool, result: Result | None = None, ctx: StepContext | None = None) -> str:
        if self.description or self.descriptionDone:
            return super().describe(done, result, ctx)
        target = self.subject() if ctx is None else str(ctx.render(self.subject()))
        text = f"{self.verbs[1] if done else self.verbs[0]} {posixpath.basename(target.rstrip('/')) or target}"
        if done and result not in (None, Result.SUCCESS):
            text = f"{text} ({result.label})"  # type: ignore[union-attr]
        return text

    verbs = ("transferring", "transferred")

    def subject(self) -> Any:
        raise NotImplementedError


class FileUpload(_Transfer):
    """Copy a file from the worker to the coordinator: to `masterdest`, or, without it, into the
    build's artifacts (named after the file). More than `maxsize` bytes fail the step and keep
    nothing."""

    name = "upload"
    verbs = ("uploading", "uploaded")
    directory = False

    def __init__(
        self, workersrc: str | Renderable, masterdest: str | Renderable | None = None,
        url: str | Renderable | None = None, urlText: str | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workersrc = workersrc
        self.masterdest = masterdest
        self.url = url
        self.urlText = urlText
        self._required("workersrc", workersrc)
        if masterdest is not None:
            self._required("masterdest", masterdest)
        if url is not None:
            self._required("url", url)

    def subject(self) -> Any:
        return self.workersrc

    def sink(self, ctx: StepContext, masterdest: str) -> ByteSink:
        return ctx.artifacts.file_sink(masterdest, self.mode)

    async def run(self, ctx: StepContext) -> Result:
        source = self.worker_path(ctx, self.workersrc)
        if self.masterdest is not None:
            sink = self.sink(ctx, str(ctx.render(self.masterdest)))
            await ctx.upload(source, sink, max_size=self.maxsize or 0, directory=self.directory)
        else:
            name = artifact_name(source) + (".tar" if self.directory else "")
            sink = ctx.artifacts.artifact_sink(ctx.builder, ctx.build_number, name)
            result = await ctx.upload(source, sink, max_size=self.maxsize or 0, directory=self.directory)
            await ctx.add_artifact(name, result.size, result.sha256)
        if self.url is not None:
            # As in Buildbot: a link to where the uploaded file is served (by the user's server).
            url = str(ctx.render(self.url))
            await ctx.add_url(self.urlText or posixpath.basename(source.rstrip("/")) or url, url)
        return Result.SUCCESS


class DirectoryUpload(FileUpload):
    """Copy a directory from the worker to the coordinator (one tar stream): its contents replace
    `masterdest`, or, without masterdest, the build gets the artifact `<directory name>.tar`."""

    directory = True

    def __init__(self, workersrc: str | Renderable, masterdest: str | Renderable | None = None, **kwargs: Any) -> None:
        super().__init__(workersrc, masterdest, **kwargs)
        if self.mode is not None:
            self.errors.append("DirectoryUpload has no mode option (files keep their own)")

    def sink(self, ctx: StepContext, masterdest: str) -> ByteSink:
        return ctx.artifacts.directory_sink(masterdest)


class FileDownload(_Transfer):
    """Copy the coordinator's file `mastersrc` to `workerdest` on the worker (created with
    `mode` when given). A missing source or one larger than `maxsize` fails the step."""

    name = "download"
    verbs = ("downloading", "downloaded")

    def __init__(self, mastersrc: str | Renderable, workerdest: str | Renderable, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mastersrc = mastersrc
        self.workerdest = workerdest
        self._required("mastersrc", mastersrc)
        self._required("workerdest", workerdest)

    def subject(self) -> Any:
        return self.mastersrc

    async def run(self, ctx: StepContext) -> Result:
        source = str(ctx.render(self.mastersrc))
        size = ctx.artifacts.file_size(source)
        if size is None:
            raise TransferError(f"no such file on the coordinator: {source}")
        if self.maxsize and size > self.maxsize:
            raise TransferError(f"{source} is {size} bytes, more than maxsize ({self.maxsize} bytes)")
        dest = self.worker_path(ctx, self.workerdest)
        await ctx.download(
            lambda: ctx.artifacts.read_file(source), dest, max_size=self.maxsize or 0, mode=self.mode or 0
        )
        return Result.SUCCESS


def artifact_name(path: str) -> str:
    name = posixpath.basename(path.rstrip("/"))
    if not name or name in (".", ".."):
        raise TransferError(f"cannot name an artifact after {path!r}; give masterdest")
    return name
