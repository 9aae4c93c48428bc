"""The same kind of configuration as a Buildbot-style `BuildmasterConfig` dict."""

from coordinator.config import Builder, ForceScheduler, ShellCommand, Worker

BuildmasterConfig = {
    "title": "Gantry",
    "buildbotURL": "https://ci.example.org",
    "workers": [Worker("linux-1", "s3cret")],
    "builders": [
        Builder("runtests", workers=["linux-1"], steps=[ShellCommand(["make", "test"])]),
    ],
    "schedulers": [ForceScheduler("force", builders=["runtests"])],
}
