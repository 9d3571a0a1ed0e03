"""Alembic migrations (packaged so `precache db upgrade` finds them after install)."""
