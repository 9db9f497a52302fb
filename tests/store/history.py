"""A database as an older Sentinel left it: every migration before a given one applied, none from it on, so a
migration's test can fill in the rows it changes with the columns they had then."""

from __future__ import annotations

from sentinel.store import migrations


def migrate_to_before(db_url: str, migration_id: str) -> list[str]:
    """Apply the migrations ordered before ``migration_id``; return the ids an upgrade will then apply, in order
    (``migration_id`` first). Ids order as they apply: each starts with its four-digit number."""
    known = migrations.known_versions()
    assert migration_id in known, f"no migration {migration_id}"
    backend = migrations._backend(db_url)
    try:
        with backend.lock(timeout=60):
            before = migrations._known().filter(lambda m: m.id < migration_id)
            backend.apply_migrations(backend.to_apply(before))
    finally:
        backend.connection.close()
    return [m for m in known if m >= migration_id]
