"""What the import tests share: run ``ParseImporter`` over an export directory, as the CLI does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from mindharbor.interop.parse_export import read_export
from mindharbor.interop.parse_import import ParseImporter
from mindharbor.security.auth import Auth
from tests.support import open_store


def import_export(settings: Any, source: Path) -> Any:
    async def run() -> Any:
        from mindharbor.auth.roles import ensure_builtin_roles
        from mindharbor.domain.registry import build_hooks

        async with open_store(settings) as store:
            store.hooks = build_hooks(settings)
            async with store.unit_of_work(Auth.system()) as repo:
                await ensure_builtin_roles(repo)
            return await ParseImporter(store, read_export(source)).run()

    return asyncio.run(run())
