"""TLS, users, tokens and roles: who may read and do what (docs/security.md)."""

from pathlib import Path

from coordinator.config import (
    TLS,
    Allow,
    Auth,
    Authz,
    Builder,
    ForceScheduler,
    MasterConfig,
    RolesFromGroups,
    RolesFromUsers,
    Secret,
    SecretInAFile,
    ShellCommand,
    Worker,
    actions,
)

config = MasterConfig(
    # --8<-- [start:workers]
    workers=[
        # The SHA-256 of the secret (here of "s3cret": printf %s s3cret | sha256sum):
        Worker("linux-1", "sha256:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"),
        # Or from the secrets providers, like a step's Secret("..."):
        Worker("linux-2", Secret("linux-2-secret")),
    ],
    secretsProviders=[SecretInAFile(Path(__file__).parent / "secrets")],
    # --8<-- [end:workers]
    builders=[
        Builder("app-linux", workers=["linux-1", "linux-2"], tags=["app"],
                steps=[ShellCommand(["make", "test"])]),
        Builder("release", workers=["linux-1"], steps=[ShellCommand(["make", "release"])]),
    ],
    schedulers=[ForceScheduler("force", builders=["app-linux", "release"])],
    # --8<-- [start:security]
    tls=TLS(cert="/etc/gantry/tls/server.pem", key="/etc/gantry/tls/server.key",
            client_ca="/etc/gantry/tls/clients-ca.pem"),
    auth=Auth(
        tokens=True,                # gantry token create ...
        client_certificates=True,   # CN = user, OU = groups
        users={"alice": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"},
    ),
    authz=Authz(
        roles=[RolesFromUsers(["alice"], roles=["admin"]), RolesFromGroups(prefix="ci-")],
        rules=[
            Allow("read", roles=["viewer", "developer"]),
            Allow(["force", "stop", "rebuild"], roles=["developer"], tags=["app"]),
            Allow(actions.ALL, roles=["admin"]),
        ],
        anonymous_read=False,
    ),
    # --8<-- [end:security]
)
