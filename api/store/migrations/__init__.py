"""Alembic migration environment (packaged so migrations ship with the wheel)."""
