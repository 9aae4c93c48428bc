"""The coordinator's domain: changes, scheduling, build requests, builds, steps, results, events.

Plain Python: no gRPC, no SQL, no SMTP. Time, storage and workers come in through the small
interfaces in :mod:`coordinator.domain.ports`.
"""
