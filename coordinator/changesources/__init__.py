"""Adapters of the change sources to the outside world (git subprocesses)."""
