"""The bodies of ``mindharbor export`` and ``mindharbor import-parse`` (cli.py registers them).

Both run in-process against the configured database, as the other maintenance commands do, and
show a rich progress bar. Failures are one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from mindharbor.settings import Settings

err = Console(stderr=True)


class CommandError(Exception):
    """A failure to report in one line."""


def run(work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    from mindharbor.errors import ParseError
    from mindharbor.fhir.outcome import FhirError
    from mindharbor.interop.parse_export import ExportError

    try:
        return asyncio.run(work())
    except (CommandError, ExportError, OSError) as exc:
        raise SystemExit(_fail(str(exc))) from None
    except ParseError as exc:
        raise SystemExit(_fail(exc.message)) from None
    except FhirError as exc:
        raise SystemExit(_fail(exc.diagnostics)) from None


def _fail(message: str) -> int:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return 1


async def _open_store(settings: Settings) -> Any:
    from mindharbor.auth.roles import ensure_builtin_roles
    from mindharbor.domain.registry import build_hooks
    from mindharbor.security.auth import Auth
    from mindharbor.storage.db import Store

    store = Store(settings, build_hooks(settings))
    await store.migrate()
    async with store.unit_of_work(Auth.system()) as repo:
        await ensure_builtin_roles(repo)
    return store


async def export(
    settings: Settings, directory: Path, fmt_name: str, types: str | None, since: str | None
) -> list[tuple[str, int, str]]:
    """Write one NDJSON file per type into ``directory``; returns (type, count, path)."""
    from mindharbor.fhir import export as exporting
    from mindharbor.fhir import search
    from mindharbor.security.auth import Auth

    fmt = exporting.parse_format(fmt_name)
    if since:
        search.date_range(since)
    directory.mkdir(parents=True, exist_ok=True)
    store = await _open_store(settings)
    try:
        wanted = (
            exporting.check_types(store, fmt, types.split(","))
            if types
            else exporting.default_types(store, fmt, False)
        )
        base = (settings.public_url or f"http://{settings.host}:{settings.port}") + "/fhir/R4"
        exporter = exporting.Exporter(
            store, Auth.master(), base, fmt, wanted, since, {"via": "cli"}
        )
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=False,
        ) as bar:
            overall = bar.add_task("all types", total=len(wanted))
            current: dict[str, Any] = {}

            async def progress(name: str, done: int) -> None:
                if name not in current:
                    current[name] = bar.add_task(name, total=None)
                bar.update(current[name], completed=done)

            async def sink(name: str, _fmt: str, lines: Any) -> str:
                path = directory / f"{name}.ndjson"
                tmp = path.with_suffix(".ndjson.part")
                with tmp.open("wb") as handle:
                    async for piece in lines:
                        handle.write(piece)
                tmp.replace(path)
                bar.advance(overall)
                return str(path)

            result = await exporter.run(sink, progress)
        manifest = {
            "format": fmt,
            "output": [vars(o) for o in result.output],
            "error": [vars(o) for o in result.errors],
        }
        (directory / "manifest.json").write_bytes(
            orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
        )
        return [(o.type, o.count, o.name) for o in result.output]
    finally:
        await store.close()


async def import_parse(
    settings: Settings, source: Path, report_path: Path | None
) -> dict[str, Any]:
    from mindharbor.interop.parse_export import read_export
    from mindharbor.interop.parse_import import ParseImporter

    export_data = read_export(source)
    if not export_data.classes and not export_data.joins:
        raise CommandError(f"no Parse export files (*.json, *.ndjson) in {source}")
    store = await _open_store(settings)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
        ) as bar:
            overall = bar.add_task("rows", total=export_data.total)
            seen: dict[str, int] = {}

            def progress(name: str, done: int) -> None:
                bar.advance(overall, done - seen.get(name, 0))
                seen[name] = done

            report = await ParseImporter(store, export_data, progress).run()
    finally:
        await store.close()
    summary = report.as_dict()
    if report_path is not None:
        report_path.write_text(json.dumps(summary, indent=2))
    return summary
