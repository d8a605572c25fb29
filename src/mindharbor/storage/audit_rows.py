"""The one statement that appends audit entries (rows built by ``domain/audit``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mindharbor.storage.repository import Repository

# One INSERT construct per AuditLog table version, executed with the rows as parameters: no
# statement is rebuilt per entry, and its compiled form comes from SQLAlchemy's cache.
_INSERTS: dict[Any, Any] = {}


def _insert_into(table: Any) -> Any:
    stmt = _INSERTS.get(table)
    if stmt is None:
        if len(_INSERTS) > 8:
            _INSERTS.clear()
        stmt = _INSERTS[table] = table.insert()
    return stmt


async def insert_rows(repo: Repository, rows: list[dict[str, Any]]) -> None:
    """Append entries in the repository's transaction, in one (executemany) statement."""
    schema = repo.schema_or_none("AuditLog")
    if schema is None:
        raise RuntimeError("AuditLog class is missing: run `mindharbor migrate`")
    if not rows:
        return
    table = repo.table(schema)
    defer = getattr(repo.conn, "defer_insert", None)
    if defer is not None:  # written with the commit, with the changes they record
        for row in rows:
            defer(table, row)
        return
    await repo.conn.execute(_insert_into(table), rows)
