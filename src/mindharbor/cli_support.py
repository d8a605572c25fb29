"""What every ``mindharbor`` command shares: one-line errors, passwords from a prompt or
standard input, and progress bars.

A command that fails because of its input or its environment (a taken username, a weak
password, a database that cannot be reached, a settings mistake) prints one line on standard
error, ``error: ...``, and exits 1: no traceback. Only a defect in MindHarbor itself still
shows one (that is a bug report). Database URLs are never echoed: they can hold a password.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from pydantic import ValidationError

from mindharbor.errors import ParseError


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def describe(exc: BaseException) -> str | None:
    """The one line to show for an expected failure; None for a defect (traceback)."""
    if isinstance(exc, ParseError):
        return exc.message
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"MINDHARBOR_{'_'.join(str(p) for p in error['loc']).upper()}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot reach the database: its host name does not resolve ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError | TimeoutError):
        return "cannot reach the database: the connection was refused or timed out"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"cannot reach the database: {exc.strerror}"
    import asyncpg  # type: ignore[import-untyped]

    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return f"the database refused: {exc}"
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return "MINDHARBOR_DATABASE_URL is not a database URL MindHarbor can use"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = describe(exc.orig)
        if inner is not None:
            return inner
        return f"the database refused: {type(exc.orig).__name__}"
    return None


def run_command(command: Callable[[], object]) -> None:
    """Run the CLI: expected failures become one line on stderr and exit status 1."""
    try:
        command()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except (SystemExit, typer.Exit):
        raise
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None:  # the failure may be wrapped (SQLAlchemy, asyncio)
            line = describe(cause)
            if line is not None:
                typer.echo(f"error: {line}", err=True)
                sys.exit(1)
            cause = cause.__cause__
        raise


def read_password(confirm: bool = True) -> str:
    """A password from a hidden prompt (a terminal) or the first line of standard input
    (a script: ``printf '%s\\n' "$PW" | mindharbor create-user ...``); never from argv."""
    if sys.stdin is not None and sys.stdin.isatty():
        value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
        return value
    line = sys.stdin.readline() if sys.stdin is not None else ""
    value = line.rstrip("\r\n")
    if not value:
        fail("no password: type it at the prompt or give it on the first line of stdin")
    return value


@contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr while a long command works (only on a terminal: logs and
    pipes get the command's summary line only). Yields ``advance(n)``."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
