"""Gantry worker agent: dials out to the coordinator and runs step commands.

Installed on build machines that never run a coordinator, so it shares only `protos` with it.
"""

__version__ = "0.1.0"
