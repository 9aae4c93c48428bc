"""HTTP side of the coordinator: webhooks (``/change_hook/DIALECT``), Buildbot's ``www`` config.

``settings`` and ``hooks`` are plain Python (no aiohttp) so checkconfig and the unit tests use
them without a server; ``server`` is the thin aiohttp adapter.
"""
