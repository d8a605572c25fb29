"""The ``mindharbor`` command: serve, migrate."""

from __future__ import annotations

import asyncio
import logging
import logging.config
from pathlib import Path
from typing import Any

import typer
import uvicorn

from mindharbor import serving
from mindharbor.cli_support import fail, progress, read_password, run_command
from mindharbor.settings import load_settings

cli = typer.Typer(
    help="MindHarbor: a behavioral health EHR backend (Parse REST dialect).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # expected failures are one line (cli_support.run_command)
)


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address (MINDHARBOR_HOST)"),
    port: int | None = typer.Option(None, help="Listen port (MINDHARBOR_PORT)"),
    workers: int = typer.Option(1, help="Worker processes (PostgreSQL deployments)"),
) -> None:
    """Migrate (unless MINDHARBOR_MIGRATE_ON_START=false), then serve the API."""
    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = load_settings(**overrides)
    serving.prepare_metrics_dir(settings.metrics_dir)  # before anything imports the client
    from mindharbor.observe.logs import logging_config, write_off_loop

    log_config = logging_config()
    logging.config.dictConfig(log_config)

    if settings.migrate_on_start:
        _migrate(settings)
    elif not _schema_is_current(settings):
        fail("the database schema is behind this version: run `mindharbor migrate` first")

    def announce() -> None:
        """Printed once the port is bound (a port in use fails before anything is said)."""
        url = f"http://{settings.host}:{settings.port}{settings.mount_path}"
        typer.echo(
            f"MindHarbor serving {url}  (app id: {settings.app_id}, database: {settings.dialect})"
        )
        if (
            not settings.production
            and settings.master_key
            and (settings.data_dir / "master.key").exists()
        ):
            typer.echo(
                f"Demo master key (from {settings.data_dir / 'master.key'}): {settings.master_key}"
            )

    if workers > 1 and settings.dialect == "sqlite":
        typer.echo("SQLite allows one writer: running a single worker.")
        workers = 1
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": workers,
        "log_level": "info",
        "log_config": log_config,  # JSON lines (mindharbor/observe/logs.py)
        "access_log": False,  # URLs carry `where` clauses, which can carry PHI
        "proxy_headers": True,
        "http": "mindharbor.httpguard:GuardedHttpToolsProtocol",
    }
    config = uvicorn.Config("mindharbor.app:app_from_environment", **options)
    write_off_loop()  # after uvicorn's logging setup: a stalled stdout never stops supervision
    try:
        if workers > 1 and serving.can_spread():
            serving.serve_workers(config, announce)
        else:
            serving.serve_one(config, announce)
    except OSError as exc:
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}")


def _schema_is_current(settings: Any) -> bool:
    from mindharbor.storage.db import Store

    async def check() -> bool:
        store = Store(settings)
        try:
            return await store.schema_is_current()
        finally:
            await store.close()

    return bool(asyncio.run(check()))


def _migrate(settings: Any) -> None:
    from mindharbor.storage.db import Store

    async def run() -> None:
        store = Store(settings)
        try:
            await store.migrate()
        finally:
            await store.close()

    with progress("Bringing the database schema up to date"):
        asyncio.run(run())


def _run_in_store(work: Any) -> Any:
    """Migrate, then run ``work(repo)`` in one system unit of work (hooks and audit apply)."""
    from mindharbor.auth.roles import ensure_builtin_roles
    from mindharbor.domain.registry import build_hooks
    from mindharbor.security.auth import Auth
    from mindharbor.storage.db import Store

    settings = load_settings()

    async def _run() -> Any:
        store = Store(settings, build_hooks(settings))
        try:
            await store.migrate()
            async with store.unit_of_work(Auth.system()) as repo:
                await ensure_builtin_roles(repo)
                return await work(repo)
        finally:
            await store.close()

    return asyncio.run(_run())


@cli.command("create-user")
def create_user(
    username: str = typer.Option(..., help="Login name"),
    role: str = typer.Option("admin", help="patient, provider, admin or compliance"),
    email: str | None = typer.Option(None, help="Email address"),
) -> None:
    """Create an account (e.g. the first admin of a new deployment). The password is read from
    a hidden prompt, or from the first line of standard input when that is not a terminal."""
    from mindharbor.auth.accounts import sign_up
    from mindharbor.security.roles import BUILTIN_ROLES

    if role not in BUILTIN_ROLES:
        fail(f"unknown role {role!r} (one of: {', '.join(BUILTIN_ROLES)})")
    password = read_password()
    body: dict[str, Any] = {"username": username, "password": password, "role": role}
    if email:
        body["email"] = email
    _, created = _run_in_store(lambda repo: sign_up(repo, body, None))
    typer.echo(f"Created {role} {username} ({created['objectId']}).")


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo clinic (idempotent; refused in production)."""
    from mindharbor.domain.demo import DEMO_USERS
    from mindharbor.domain.demo import seed_demo as seed

    if load_settings().production:
        fail("seed-demo is refused when MINDHARBOR_PRODUCTION=true")
    with progress("Seeding the demo clinic", total=len(DEMO_USERS)) as advance:
        logins = _run_in_store(lambda repo: seed(repo, advance))
    typer.echo(f"Demo logins (password for all: {logins[0]['password']}):")
    for login in logins:
        typer.echo(f"  {login['username']:<18} {login['role']}")


@cli.command()
def docs(
    directory: str = typer.Option("docs", help="Where to write the generated files"),
    check: bool = typer.Option(False, help="Only report stale files (exit 1 if any)"),
) -> None:
    """Generate the data dictionary and the Mermaid ER diagram from schema.json."""
    from pathlib import Path

    from mindharbor.docs import stale_docs, write_docs

    target = Path(directory)
    if check:
        stale = stale_docs(target)
        if stale:
            typer.echo("Stale: " + ", ".join(stale) + " (run `mindharbor docs`)")
            raise typer.Exit(1)
        typer.echo("Docs are current.")
        return
    for path in write_docs(target):
        typer.echo(f"wrote {path}")


@cli.command("verify-audit")
def verify_audit() -> None:
    """Recompute every audit digest and seal; exit 1 at the first altered, removed or
    inserted entry."""
    from mindharbor.domain.audit import verify

    with progress("Verifying every audit entry and seal"):
        report = _run_in_store(verify)
    if report.ok:
        typer.echo(
            f"Audit log verified: {report.checked} entries, {report.sealed_blocks} sealed blocks."
        )
        return
    typer.echo("AUDIT LOG FAILED VERIFICATION: " + "; ".join(report.problems), err=True)
    raise typer.Exit(1)


@cli.command("rotate-files-key")
def rotate_files_key(
    new_key: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="MINDHARBOR_NEW_FILES_KEY",
        help="The new files key: 32 random bytes, base64 or hex (never on the command line).",
    ),
) -> None:
    """Rewrap every file's data key under a new MINDHARBOR_FILES_KEY; bodies are untouched."""
    from mindharbor.files.service import rotate_configured_key

    settings = load_settings()
    with progress("Rewrapping file keys") as advance:
        counts = asyncio.run(rotate_configured_key(settings, new_key, advance))
    typer.echo(
        f"Rewrapped {counts['rewrapped']}, already under the new key {counts['skipped']}, "
        f"failed {counts['failed']}."
    )
    if counts["failed"]:
        raise typer.Exit(1)
    typer.echo("Now set MINDHARBOR_FILES_KEY to the new key and restart every worker.")


@cli.command("export")
def export_data(
    output: Path = typer.Option(  # noqa: B008
        Path("export"), "--output", "-o", help="Directory for the files"
    ),
    fmt: str = typer.Option("fhir", "--format", help="fhir (FHIR NDJSON) or parse (restorable)"),
    types: str | None = typer.Option(None, "--type", help="Comma-separated types or classes"),
    since: str | None = typer.Option(None, help="Only what changed since this FHIR date"),
) -> None:
    """Bulk export (as FHIR $export does) into a directory, with the master key's rights."""
    from mindharbor.interop import commands

    written = commands.run(lambda: commands.export(load_settings(), output, fmt, types, since))
    for kind, count, path in written:
        typer.echo(f"{kind:<28} {count:>8}  {path}")


@cli.command("import-parse")
def import_parse(
    source: Path = typer.Argument(..., help="Directory (or file) of a Parse export"),  # noqa: B008
    report: Path | None = typer.Option(None, help="Write the full report as JSON"),  # noqa: B008
) -> None:
    """Import a Parse Server / Back4app export (see docs/fhir.md); safe to run again."""
    from mindharbor.interop import commands

    summary = commands.run(lambda: commands.import_parse(load_settings(), source, report))
    typer.echo(f"Imported: {summary['imported']}")
    if summary["alreadyPresent"]:
        typer.echo(f"Already present (skipped): {summary['alreadyPresent']}")
    typer.echo(
        f"Users with their password kept: {summary['usersWithPassword']}; "
        f"without a password hash (must reset): {summary['usersWithoutPassword']}"
    )
    for label, key in (
        ("Not imported", "notImported"),
        ("Fields dropped", "droppedFields"),
        ("PHI given MindHarbor's default ACL", "aclDefaulted"),
    ):
        if summary[key]:
            typer.echo(f"{label}: {summary[key]}")
    for failure in summary["failed"][:20]:
        typer.echo(f"Failed: {failure['class']} {failure['objectId']}: {failure['reason']}")
    if len(summary["failed"]) > 20:
        typer.echo(f"... and {len(summary['failed']) - 20} more failures (see --report)")


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema (once per upgrade, before the new workers)."""
    settings = load_settings()
    _migrate(settings)
    typer.echo(f"Database is up to date ({settings.dialect}).")


@cli.command("backup")
def backup_command(
    archive: Path = typer.Argument(  # noqa: B008
        ..., help="The .tar.gz to write (holds keys and PHI: keep it encrypted)"
    ),
) -> None:
    """Back up the embedded SQLite database, the file store and the generated keys, online."""
    from mindharbor import backup

    settings = load_settings()
    try:
        with progress("Backing up") as advance:
            manifest = backup.backup(settings, archive, advance)
    except backup.BackupError as exc:
        fail(str(exc))
    files = sum(1 for name in manifest["sha256"] if name.startswith("files/"))
    keys = ", ".join(manifest["keys"]) or "none"
    typer.echo(f"Backed up the database, {files} stored files and keys ({keys}) to {archive}.")
    in_files = {"master_key": "master.key", "files_key": "files.key", "audit_key": ""}
    for name, file in in_files.items():
        if getattr(settings, name) and file not in manifest["keys"]:
            typer.echo(f"Keep MINDHARBOR_{name.upper()} with this backup: it is not in it.")


@cli.command("restore")
def restore_command(
    archive: Path = typer.Argument(..., help="A backup written by `mindharbor backup`"),  # noqa: B008
    force: bool = typer.Option(False, help="Replace an existing database (server stopped)"),
) -> None:
    """Restore a backup into MINDHARBOR_DATA_DIR (stop the server first)."""
    from mindharbor import backup

    settings = load_settings()
    try:
        with progress("Restoring") as advance:
            manifest = backup.restore(settings, archive, force, advance)
    except backup.BackupError as exc:
        fail(str(exc))
    typer.echo(f"Restored the backup of {manifest['created']} into {settings.data_dir}.")


def main() -> None:
    run_command(cli)
