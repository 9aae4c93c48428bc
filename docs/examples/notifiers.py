"""Mail and HTTP push notifications."""

from pathlib import Path

from coordinator.config import (
    Builder,
    ForceScheduler,
    HttpStatusPush,
    MailNotifier,
    MasterConfig,
    ShellCommand,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("runtests", workers=["w1"], tags=["release"],
                      steps=[ShellCommand(["make", "test"])])],
    schedulers=[ForceScheduler("force", builders=["runtests"])],
    # --8<-- [start:notifiers]
    url="https://ci.example.org",
    notifiers=[
        MailNotifier("gantry@example.org", mode=("failing", "problem"), tags=["release"],
                     extraRecipients=["dev-list@example.org"], lookup="example.org",
                     relayhost="smtp.example.org", smtpPort=587, useTls=True,
                     smtpUser="gantry", smtpPassword=Path("/etc/gantry/smtp.secret")),
        HttpStatusPush("https://hooks.example.org/gantry", builders=["runtests"],
                       secret="shared-secret", timeout=10),
    ],
    # --8<-- [end:notifiers]
)
