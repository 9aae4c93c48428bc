# A Buildbot master.cfg whose only change is its import line (Buildbot's was
# `from buildbot.plugins import ...`); `gantry checkconfig --from-buildbot` explains each part.
from coordinator.config.buildbot import changes, reporters, schedulers, steps, util, worker

c = BuildmasterConfig = {}

c['workers'] = [worker.Worker("linux-1", "s3cret", max_builds=2)]
c['protocols'] = {'pb': {'port': 9989}}

c['change_source'] = [changes.GitPoller('https://git.example.org/app.git',
                                        branches=['main'], pollInterval=300)]

c['schedulers'] = [
    schedulers.SingleBranchScheduler(name="main",
                                     change_filter=util.ChangeFilter(branch='main'),
                                     treeStableTimer=60, builderNames=["runtests"]),
    schedulers.ForceScheduler(name="force", builderNames=["runtests"]),
]

factory = util.BuildFactory()
factory.addStep(steps.Git(repourl='https://git.example.org/app.git', mode='incremental'))
factory.addSteps([
    steps.ShellCommand(name="test", command=["make", "test"], haltOnFailure=True),
    steps.ShellCommand(name="docs", command=["make", "docs"], env={"LANG": "C.UTF-8"}),
])
c['builders'] = [util.BuilderConfig(name="runtests", workernames=["linux-1"], factory=factory)]

c['services'] = [reporters.MailNotifier(fromaddr="ci@example.org", mode=["failing"],
                                        extraRecipients=["dev@example.org"])]

c['title'] = "App CI"
c['buildbotURL'] = "https://ci.example.org/"
c['www'] = dict(port=8010, change_hook_dialects={'github': {'secret': 'hook-secret'}})
c['db'] = {'db_url': "sqlite:///state.sqlite"}
