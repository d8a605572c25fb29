"""The ``mindharbor`` command: serve, migrate."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import typer
import uvicorn

from mindharbor import serving
from mindharbor.settings import load_settings

cli = typer.Typer(
    help="MindHarbor: a behavioral health EHR backend (Parse REST dialect).", no_args_is_help=True
)


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address (MINDHARBOR_HOST)"),
    port: int | None = typer.Option(None, help="Listen port (MINDHARBOR_PORT)"),
    workers: int = typer.Option(1, help="Worker processes (PostgreSQL deployments)"),
) -> None:
    """Migrate, then serve the API."""
    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = load_settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mindharbor.storage.db import Store

    async def _migrate() -> None:
        store = Store(settings)
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(_migrate())
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
        "access_log": False,  # URLs carry `where` clauses, which can carry PHI
        "proxy_headers": True,
    }
    if workers > 1 and serving.can_spread():
        serving.serve_workers(uvicorn.Config("mindharbor.app:app_from_environment", **options))
    else:
        uvicorn.run("mindharbor.app:app_from_environment", **options)


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
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create an account (e.g. the first admin of a new deployment)."""
    from mindharbor.auth.accounts import sign_up

    body: dict[str, Any] = {"username": username, "password": password, "role": role}
    if email:
        body["email"] = email
    _, created = _run_in_store(lambda repo: sign_up(repo, body, None))
    typer.echo(f"Created {role} {username} ({created['objectId']}).")


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo clinic (idempotent; refused in production)."""
    from mindharbor.domain.demo import seed_demo as seed

    if load_settings().production:
        raise SystemExit("seed-demo is refused when MINDHARBOR_PRODUCTION=true")
    logins = _run_in_store(seed)
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

    counts = asyncio.run(rotate_configured_key(load_settings(), new_key))
    typer.echo(
        f"Rewrapped {counts['rewrapped']}, already under the new key {counts['skipped']}, "
        f"failed {counts['failed']}."
    )
    if counts["failed"]:
        raise typer.Exit(1)
    typer.echo("Now set MINDHARBOR_FILES_KEY to the new key and restart every worker.")


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from mindharbor.storage.db import Store

    settings = load_settings()

    async def _run() -> None:
        store = Store(settings)
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(_run())
    typer.echo(f"Database is up to date ({settings.dialect}).")


def main() -> None:
    cli()
