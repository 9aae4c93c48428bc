"""Who may do what: identities, roles matched from users and groups, rules per action scoped to
builders (Buildbot's `authz` model with Gantry's names), and API tokens. Standard library only."""
