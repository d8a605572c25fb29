"""Every stored value that may reference a file, for the orphan-file collector
(``files/service.py``): File columns that are set, and Array/Object columns whose JSON mentions
a File. Runs as the server (it must see every row), streamed, one class at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa

from mindharbor.storage.repository import Repository


async def values_that_may_hold_files(repo: Repository) -> AsyncIterator[Any]:
    for schema in repo.store.all_schemas():
        specs = [
            s
            for s in schema.fields.values()
            if s.has_column and s.type in ("File", "Array", "Object")
        ]
        if not specs:
            continue
        table = repo.table(schema)
        conds = []
        for spec in specs:
            column = table.c[spec.name]
            if spec.type == "File":
                conds.append(column.is_not(None))
            else:
                conds.append(sa.cast(column, sa.Text).like('%"File"%'))
        stmt = sa.select(*(table.c[s.name] for s in specs)).where(sa.or_(*conds))
        result = await repo.conn.stream(stmt)
        async for row in result:
            for value in row:
                yield value
