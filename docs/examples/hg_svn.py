"""Mercurial and Subversion: pollers, source steps."""

from coordinator.config import (
    SVN,
    AnyBranchScheduler,
    Builder,
    ChangeFilter,
    HgPoller,
    Interpolate,
    MasterConfig,
    Mercurial,
    Secret,
    ShellCommand,
    SVNPoller,
    Worker,
    split_file_branches,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    # --8<-- [start:hg_svn]
    change_source=[
        HgPoller("https://hg.example.org/app", branches=["default", "stable"], bookmarks=["next"],
                 pollInterval=60, project="app"),
        SVNPoller("svn://svn.example.org/lib", split_file=split_file_branches, histmax=100,
                  svnuser="ci", pollInterval=60, project="lib",
                  revlinktmpl="https://svn.example.org/viewvc?view=revision&revision=%s"),
    ],
    builders=[
        Builder("app", workers=["w1"], steps=[
            Mercurial(repourl="https://hg.example.org/app", branchType="inrepo",
                      mode="full", method="clean"),
            ShellCommand(name="test", command=["make", "test"]),
        ]),
        Builder("lib", workers=["w1"], steps=[
            SVN(repourl=Interpolate("svn://svn.example.org/lib/%(src::branch)s"),
                username="ci", password=Secret("svn-password"), mode="incremental"),
            ShellCommand(name="test", command=["make", "test"]),
        ]),
    ],
    schedulers=[
        AnyBranchScheduler("app", change_filter=ChangeFilter(project="app"), builders=["app"]),
        AnyBranchScheduler("lib", change_filter=ChangeFilter(project="lib"), builders=["lib"]),
    ],
    # --8<-- [end:hg_svn]
)
