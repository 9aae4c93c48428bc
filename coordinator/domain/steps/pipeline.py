"""Pipelines defined in the repository: the `Pipeline` step reads a file from the checkout on the
worker (default ``.gantry/pipeline.yml``), checks it, and appends its steps to the build, so each
revision builds with its own definition (Buildkite's `pipeline upload`, GitHub's workflow files).

The file is declarative and can only ask for what the builder's configuration allows: shell
steps on the build's own worker (never a coordinator-side command, never another worker), and
only the secrets listed in ``Pipeline(secrets=[...])``. A file that does not parse or validate
fails the step with ``FILE:LINE: problem``. The file's format (parsed by a `PipelineParser`
port: YAML, coordinator/pipeline_yaml.py) is described in docs/workflows.md:

    env: {KEY: value}                # for every step
    steps:
      - name: test                   # required, unique in the file
        run: pytest -q               # required: a shell line, or a list of arguments
        env: {KEY: value, TOKEN: {secret: deploy_token}}
        timeout: 600                 # seconds without output (default 1200)
        workdir: build               # relative to the builder directory (default: build)
        alwaysRun: false             # run even after a failure or a stop
        haltOnFailure: true          # a failure stops the build (default: true)
        branches: [main, release/*]  # run only on these branches (globs); else SKIPPED
        artifacts: [dist/*.whl]      # files kept as build artifacts after the step
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from coordinator.domain.properties.renderables import Renderable, Secret
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, ShellCommand, StepContext
from coordinator.domain.steps.transfer import artifact_name
from coordinator.domain.workers.commands import TransferError

DEFAULT_FILE = ".gantry/pipeline.yml"
MAX_FILE = 256 * 1024
MAX_STEPS = 200
STEP_KEYS = ("name", "run", "env", "timeout", "workdir", "alwaysRun", "haltOnFailure", "branches", "artifacts")
# Keys people reach for that a pipeline file may not decide, and why.
REFUSED = {
    "worker": "a pipeline cannot choose workers: the builder's configuration does",
    "workers": "a pipeline cannot choose workers: the builder's configuration does",
    "worker_labels": "a pipeline cannot choose workers: the builder's configuration does",
    "master": "a pipeline cannot run commands on the coordinator",
    "coordinator": "a pipeline cannot run commands on the coordinator",
    "secrets": "name a secret where it is used: env: {VAR: {secret: NAME}}",
}


@dataclass(frozen=True)
class Node:
    """A parsed value with the line it starts on (1-based): a dict of str -> Node, a list of
    Nodes, or a scalar (str, int, float, bool, None)."""

    value: Any
    line: int


class PipelineInvalid(Exception):
    """The file is not a valid pipeline: ``str()`` is ``FILE:LINE: problem``."""

    def __init__(self, file: str, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")


class PipelineParser(Protocol):
    def __call__(self, text: str, file: str) -> Node:
        """The document's root; PipelineInvalid when the text does not parse."""
        ...


class _Bytes:
    """A ByteSink that keeps the file in memory (its size is bounded by the upload)."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data

    async def commit(self) -> None:
        return None

    async def abort(self) -> None:
        self.data.clear()


class PipelineStep(BuildStep):
    """Reads `path` (relative to `workdir`) from the checkout and appends the steps it defines.
    `secrets`: the secrets its steps may read. Must be the builder's last step."""

    name = "pipeline"
    haltOnFailure = True

    def __init__(
        self, path: str = DEFAULT_FILE, *, parser: PipelineParser, secrets: Sequence[str] = (),
        workdir: str = "build", **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", "reading pipeline")
        kwargs.setdefault("descriptionDone", "pipeline")
        super().__init__(**kwargs)
        self.path = path
        self.parser = parser
        self.secrets = [secrets] if isinstance(secrets, str) else list(secrets)
        self.workdir = workdir
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            self.errors.append(f"path must be a relative path inside the checkout, not {path!r}")
        if not all(isinstance(s, str) and s for s in self.secrets):
            self.errors.append(f"secrets must be a list of secret names, not {secrets!r}")

    async def run(self, ctx: StepContext) -> Result:
        source = posixpath.join(self.workdir, self.path)
        sink = _Bytes()
        try:
            await ctx.upload(source, sink, max_size=MAX_FILE)
        except TransferError as exc:
            await ctx.write_log(f"cannot read the pipeline file {self.path}: {exc}\n")
            return Result.FAILURE
        try:
            text = bytes(sink.data).decode("utf-8")
        except UnicodeDecodeError:
            await ctx.write_log(f"{self.path}: not UTF-8 text\n")
            return Result.FAILURE
        try:
            steps = build_steps(self.parser(text, self.path), self.path, self.secrets, ctx.builder, ctx.step_names)
        except PipelineInvalid as exc:
            await ctx.write_log(f"{exc}\n")
            ctx.set_state(str(exc)[:200])
            return Result.FAILURE
        await ctx.write_log(f"{self.path}: {len(steps)} step(s): {', '.join(s.name for s in steps)}\n")
        await ctx.add_steps(steps)
        return Result.SUCCESS


def build_steps(
    root: Node, file: str, allowed: Sequence[str], builder: str, taken: Sequence[str] = ()
) -> list[BuildStep]:
    """The steps `root` defines, or PipelineInvalid naming the line of the first problem;
    `taken`: the names of the build's own steps."""
    check = _Checker(file, allowed, builder)
    top = check.mapping(root, "the pipeline file", ("steps", "env"))
    if "steps" not in top:
        raise PipelineInvalid(file, root.line, "the pipeline needs 'steps:', a list of steps")
    common = check.env(top["env"]) if "env" in top else {}
    items = top["steps"]
    if not isinstance(items.value, list) or not items.value:
        raise PipelineInvalid(file, items.line, "'steps' must be a non-empty list of steps")
    if len(items.value) > MAX_STEPS:
        raise PipelineInvalid(file, items.line, f"at most {MAX_STEPS} steps, not {len(items.value)}")
    out: list[BuildStep] = []
    names: set[str] = set()
    for item in items.value:
        for step in check.step(item, common):
            if step.name in names:
                raise PipelineInvalid(file, item.line, f"two steps are named {step.name!r}")
            if step.name in taken:
                raise PipelineInvalid(file, item.line, f"the builder already has a step named {step.name!r}")
            names.add(step.name)
            out.append(step)
    return out


class _Checker:
    def __init__(self, file: str, allowed: Sequence[str], builder: str) -> None:
        self.file = file
        self.allowed = list(allowed)
        self.builder = builder

    def fail(self, node: Node, problem: str) -> PipelineInvalid:
        return PipelineInvalid(self.file, node.line, problem)

    def mapping(self, node: Node, what: str, keys: Sequence[str]) -> dict[str, Node]:
        if not isinstance(node.value, dict):
            raise self.fail(node, f"{what} must be a mapping (key: value)")
        for key, value in node.value.items():
            if key in REFUSED and key not in keys:
                raise self.fail(value, f"{key!r}: {REFUSED[key]}")
            if key not in keys:
                raise self.fail(value, f"unknown key {key!r} in {what} (known: {', '.join(keys)})")
        return dict(node.value)

    def text(self, node: Node, what: str) -> str:
        if isinstance(node.value, bool):
            word = "true" if node.value else "false"
            raise self.fail(node, f"{what} must be a string, not the YAML boolean {word} (quote it: '{word}')")
        if not isinstance(node.value, str | int | float) or node.value == "":
            raise self.fail(node, f"{what} must be a non-empty string")
        return str(node.value)

    def strings(self, node: Node, what: str) -> list[str]:
        if isinstance(node.value, str):
            return [node.value]
        if not isinstance(node.value, list) or not node.value:
            raise self.fail(node, f"{what} must be a string or a non-empty list of strings")
        return [self.text(n, f"each of {what}") for n in node.value]

    def flag(self, node: Node, what: str) -> bool:
        if not isinstance(node.value, bool):
            raise self.fail(node, f"{what} must be true or false, not {node.value!r}")
        return node.value

    def env(self, node: Node) -> dict[str, str | Renderable]:
        if not isinstance(node.value, dict):
            raise self.fail(node, "env must be a mapping of variable names to values")
        out: dict[str, str | Renderable] = {}
        for key, value in node.value.items():
            if not isinstance(key, str) or not key or "=" in key:
                raise self.fail(value, f"env: {key!r} is not a variable name")
            if isinstance(value.value, dict):
                spec = self.mapping(value, f"env {key}", ("secret",))
                if "secret" not in spec:
                    raise self.fail(value, f"env {key}: give {{secret: NAME}}")
                name = self.text(spec["secret"], f"env {key}: secret")
                if name not in self.allowed:
                    allowed = ", ".join(self.allowed) or "none"
                    raise self.fail(spec["secret"], f"secret {name!r} is not allowed for builder {self.builder!r} "
                                                    f"(its Pipeline(secrets=[...]) allows: {allowed})")
                out[key] = Secret(name)
            elif value.value is None or isinstance(value.value, list):
                raise self.fail(value, f"env {key} must be a string, a number or {{secret: NAME}}")
            else:
                out[key] = str(value.value).lower() if isinstance(value.value, bool) else str(value.value)
        return out

    def step(self, node: Node, common: dict[str, str | Renderable]) -> list[BuildStep]:
        spec = self.mapping(node, "a step", STEP_KEYS)
        for required in ("name", "run"):
            if required not in spec:
                raise self.fail(node, f"a step needs {required!r}")
        name = self.text(spec["name"], "name")
        run = spec["run"]
        command: str | list[str] = self.text(run, "run") if not isinstance(run.value, list) \
            else self.strings(run, "run")
        env = {**common, **(self.env(spec["env"]) if "env" in spec else {})}
        timeout: float = 1200
        if "timeout" in spec:
            t = spec["timeout"]
            if isinstance(t.value, bool) or not isinstance(t.value, int | float) or t.value <= 0:
                raise self.fail(t, f"timeout must be a number of seconds > 0, not {t.value!r}")
            timeout = float(t.value)
        workdir = self.text(spec["workdir"], "workdir") if "workdir" in spec else "build"
        if workdir.startswith("/") or ".." in workdir.split("/"):
            raise self.fail(spec["workdir"], f"workdir must be a relative path without '..', not {workdir!r}")
        always = self.flag(spec["alwaysRun"], "alwaysRun") if "alwaysRun" in spec else False
        halt = self.flag(spec["haltOnFailure"], "haltOnFailure") if "haltOnFailure" in spec else True
        when = _on_branches(self.strings(spec["branches"], "branches")) if "branches" in spec else True
        shell = ShellCommand(command, name=name, env=env, timeout=timeout, workdir=workdir, alwaysRun=always,
                             haltOnFailure=halt, doStepIf=when)
        if "artifacts" not in spec:
            return [shell]
        patterns = self.strings(spec["artifacts"], "artifacts")
        for p, n in zip(patterns, spec["artifacts"].value if isinstance(spec["artifacts"].value, list)
                        else [spec["artifacts"]], strict=True):
            if p.startswith("/") or ".." in p.split("/"):
                raise self.fail(n, f"artifacts must be relative paths without '..', not {p!r}")
        keep = KeepArtifacts(patterns, workdir, name=f"{name} artifacts", alwaysRun=always, doStepIf=when)
        return [shell, keep]


def _on_branches(globs: list[str]) -> Callable[[StepContext], bool]:
    def when(ctx: StepContext) -> bool:
        branch = str(ctx.get_property("branch", "") or "")
        return any(fnmatch.fnmatchcase(branch, g) for g in globs)

    return when


class KeepArtifacts(BuildStep):
    """Uploads the files matching `patterns` (under `workdir`) as the build's artifacts; a
    pattern that matches nothing fails the step."""

    def __init__(self, patterns: Sequence[str], workdir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patterns = list(patterns)
        self.workdir = workdir

    async def run(self, ctx: StepContext) -> Result:
        kept = 0
        for pattern in self.patterns:
            paths = await ctx.glob(posixpath.join(self.workdir, pattern))
            if not paths:
                await ctx.write_log(f"no file matches {pattern!r} in {self.workdir}\n")
                return Result.FAILURE
            for path in sorted(paths):
                name = artifact_name(path)
                sink = ctx.artifacts.artifact_sink(ctx.builder, ctx.build_number, name)
                result = await ctx.upload(path, sink)
                await ctx.add_artifact(name, result.size, result.sha256)
                await ctx.write_log(f"kept {name} ({result.size} bytes)\n")
                kept += 1
        ctx.set_state(f"kept {kept} artifact(s)")
        return Result.SUCCESS
