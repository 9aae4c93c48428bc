"""Workflows: cancelling superseded work, a build matrix, try jobs, a pipeline in the repository."""

import re
from pathlib import Path

from coordinator.config import (
    Builder,
    FailingBuildsetCanceller,
    ForceScheduler,
    Git,
    Interpolate,
    MasterConfig,
    Matrix,
    OldBuildCanceller,
    Pipeline,
    SecretInAFile,
    ShellCommand,
    SingleBranchScheduler,
    TryScheduler,
    Worker,
)

REPO = "https://git.example.org/app.git"

# --8<-- [start:matrix]
test = Builder(
    "test", workers=["linux-1", "arm-1"],
    matrix=Matrix(
        python=["3.11", "3.12"], os=["linux", "arm"],
        exclude=[{"python": "3.11", "os": "arm"}],      # partial combinations to leave out
        include=[{"python": "3.13", "os": "linux"}],    # whole combinations to add
        labels=["os"],                                  # the worker must advertise this label
    ),
    fail_fast=True,                                     # one fails: stop the others
    steps=[
        Git(repourl=REPO, branch="main"),
        ShellCommand(name="test", command=Interpolate("tox -e py%(prop:python)s")),
    ],
)
# --8<-- [end:matrix]

# --8<-- [start:pipeline]
app = Builder("app", workers=["linux-1"], steps=[
    Git(repourl=REPO, branch="main"),
    Pipeline(".gantry/pipeline.yml", secrets=["pypi_token"]),   # the only secret it may read
])
# --8<-- [end:pipeline]

lint = Builder("lint", workers=["linux-1"], steps=[Git(repourl=REPO), ShellCommand(["make", "lint"])])

config = MasterConfig(
    workers=[Worker("linux-1", "s1", max_builds=2), Worker("arm-1", "s2")],
    secretsProviders=[SecretInAFile(Path(__file__).parent / "secrets")],
    builders=[test, app, lint],
    schedulers=[
        SingleBranchScheduler("push", branch="main", builders=["test", "app", "lint"]),
        ForceScheduler("force", builders=["test", "app", "lint"]),
        # --8<-- [start:try]
        TryScheduler("try", builderNames=["test", "lint"], max_patch_size=2 * 1024 * 1024),
        # --8<-- [end:try]
    ],
    # --8<-- [start:cancellers]
    cancellers=[
        # A new push to main or to a pull request supersedes the builds of its older revisions.
        OldBuildCanceller("superseded", builders=["test", "app"], branches=re.compile(r"main|refs/pull/.*")),
        # lint fails: the rest of that buildset stops (cancel=None: every builder of it).
        FailingBuildsetCanceller("lint-fails-fast", builders=["lint"], cancel=["app"]),
    ],
    # --8<-- [end:cancellers]
)
