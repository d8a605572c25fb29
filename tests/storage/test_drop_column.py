"""Deleting a field that another connection added a moment ago (the SDK's addNumber, update(),
deleteField(), update() on SQLite failed with 500 "no such column" about one run in three)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mindharbor.storage.class_changes import _drop_column


def test_a_column_added_on_another_connection_can_be_dropped(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as setup:
        setup.exec_driver_sql('CREATE TABLE "Evolving" (id TEXT PRIMARY KEY, name TEXT)')
    with engine.connect() as stale, engine.connect() as other:
        stale.exec_driver_sql('SELECT name FROM "Evolving"').all()  # caches the schema
        stale.commit()
        other.exec_driver_sql('ALTER TABLE "Evolving" ADD COLUMN score REAL')
        other.commit()

        _drop_column(stale, "Evolving", "score")
        stale.commit()
        _drop_column(stale, "Evolving", "score")  # already gone: nothing to do

    with engine.connect() as check:
        columns = [row[1] for row in check.exec_driver_sql('PRAGMA table_info("Evolving")')]
    assert columns == ["id", "name"]
    engine.dispose()
