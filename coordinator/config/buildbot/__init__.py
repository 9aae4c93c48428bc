"""Run a Buildbot ``master.cfg`` on Gantry: change its import line to

    from coordinator.config.buildbot import *

and ``worker``, ``changes``, ``schedulers``, ``util``, ``steps``, ``reporters`` and ``secrets``
are Buildbot's plugin namespaces, building Gantry's objects with Buildbot's spellings. What
does not carry over is noted where it is written (see log.py); ``gantry checkconfig`` reports
it and ``gantry checkconfig --from-buildbot`` prints the whole migration report.
"""

from coordinator.config.buildbot import changes, reporters, schedulers, secrets, steps, util, worker

__all__ = ["changes", "reporters", "schedulers", "secrets", "steps", "util", "worker"]
