"""Storage: the only importer of SQLAlchemy. Returns domain objects, never rows."""

from coordinator.storage.repository import SqlRepository, open_repository

__all__ = ["SqlRepository", "open_repository"]
