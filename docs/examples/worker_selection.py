"""Worker selection hooks, request collapsing and locks on builders."""

from coordinator.config import (
    Builder,
    ForceScheduler,
    MasterConfig,
    MasterLock,
    ShellCommand,
    Worker,
    WorkerLock,
)

STEPS = [ShellCommand(["make", "test"])]


# --8<-- [start:selection]
def fast_first(builder, workers, request):          # nextWorker: one of `workers`, or None
    return min(workers, key=lambda w: w.name != "fast")

def linux_only(builder, worker, request):           # canStartBuild: True / False
    return worker.info.get("os") == "linux"

def newest_first(builder, requests):                # nextBuild: one of `requests` (or None)
    return max(requests, key=lambda r: r.submitted_at)

linux_tests = Builder(
    "linux-tests", workers=["w1", "w2", "w3"], steps=STEPS,
    worker_labels=["linux", "gpu"],                 # only workers that advertised both labels
    nextWorker=fast_first, canStartBuild=linux_only, nextBuild=newest_first,
)
# --8<-- [end:selection]


# --8<-- [start:collapse]
def same_branch(builder, req1, req2):      # req1 is starting; req.buildset has the source stamps
    return req1.buildset.sourcestamps[0].branch == req2.buildset.sourcestamps[0].branch

docs = Builder("docs", workers=["w1"], steps=STEPS, collapseRequests=same_branch)
# --8<-- [end:collapse]

# --8<-- [start:locks]
deploy = MasterLock("deploy")
cpu = WorkerLock("cpu", maxCount=2, maxCountForWorker={"big": 8})

release = Builder("release", workers=["w1"], locks=[deploy.access("exclusive")], steps=[
    ShellCommand(["make"], name="build", locks=[cpu.access("counting")]),
    ShellCommand(["./upload"], name="upload"),
])
staging = Builder("staging", workers=["w1", "w2"], locks=[deploy.access("exclusive")],
                  steps=STEPS)
# --8<-- [end:locks]

config = MasterConfig(
    workers=[Worker("w1", "pw1"), Worker("w2", "pw2"), Worker("w3", "pw3")],
    builders=[linux_tests, docs, release, staging],
    schedulers=[ForceScheduler("force", builders=["linux-tests", "docs", "release", "staging"])],
)
