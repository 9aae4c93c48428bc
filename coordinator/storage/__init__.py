"""Persistence: the SQL stores (sql.py) and the in-memory ones (memory.py)."""
