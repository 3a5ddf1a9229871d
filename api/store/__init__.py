"""Incident store: SQLAlchemy 2 models, Alembic migrations (packaged here) and the repository functions."""

from api.store.db import Store

__all__ = ["Store"]
