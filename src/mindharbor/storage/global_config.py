"""The global config row (Parse's ``_GlobalConfig``, objectId ``"1"``): read and merged here.

Values are kept as the Parse JSON a client sent (dates, files, pointers stay encoded), exactly
as ``GET /config`` answers them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mindharbor.storage.codec import utcnow
from mindharbor.storage.system_tables import global_config_table

ROW_ID = "1"


async def read_config(conn: Any) -> tuple[dict[str, Any], dict[str, bool]]:
    """(params, masterKeyOnly); both empty before the first ``PUT /config``."""
    table = global_config_table
    stmt = sa.select(table.c.params, table.c.masterKeyOnly).where(table.c.objectId == ROW_ID)
    row = (await conn.execute(stmt)).first()
    if row is None:
        return {}, {}
    return dict(row[0] or {}), {k: bool(v) for k, v in (row[1] or {}).items()}


async def write_config(
    conn: Any, params: dict[str, Any], master_key_only: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, bool]]:
    """Merge a ``PUT /config`` into the row (locked for this transaction), as Parse does: each
    named parameter is set, or removed by ``{"__op": "Delete"}``, and its master-key-only flag
    is set from ``masterKeyOnly`` (false when absent). Others are left as they were."""
    table = global_config_table
    stmt = (
        sa.select(table.c.params, table.c.masterKeyOnly)
        .where(table.c.objectId == ROW_ID)
        .with_for_update()
    )
    row = (await conn.execute(stmt)).first()
    current = dict(row[0] or {}) if row is not None else {}
    flags = dict(row[1] or {}) if row is not None else {}
    for key, value in params.items():
        if isinstance(value, dict) and value.get("__op") == "Delete":
            current.pop(key, None)
            flags.pop(key, None)
            continue
        current[key] = value
        flags[key] = bool(master_key_only.get(key, False))
    values = {"params": current, "masterKeyOnly": flags, "updatedAt": utcnow()}
    if row is None:
        await conn.execute(table.insert().values(objectId=ROW_ID, **values))
    else:
        await conn.execute(table.update().where(table.c.objectId == ROW_ID).values(values))
    return current, {k: bool(v) for k, v in flags.items()}
