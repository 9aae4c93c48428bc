"""Secrets read from one file per secret (here the folder `secrets/` beside this file; in
production e.g. /etc/gantry/secrets)."""

from pathlib import Path

from coordinator.config import (
    Builder,
    ForceScheduler,
    Interpolate,
    MasterConfig,
    Secret,
    SecretInAFile,
    ShellCommand,
    Worker,
)

SECRETS = Path(__file__).parent / "secrets"

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    schedulers=[ForceScheduler("force", builders=["deploy"])],
    # --8<-- [start:secrets]
    secretsProviders=[SecretInAFile(SECRETS)],
    builders=[Builder("deploy", workers=["w1"], steps=[
        ShellCommand(command=["./deploy.sh", Interpolate("--user=ci:%(secret:deploy_pw)s")],
                     env={"API_TOKEN": Secret("api_token")}),
    ])],
    # --8<-- [end:secrets]
)
