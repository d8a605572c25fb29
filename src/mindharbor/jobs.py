"""Background jobs: ``POST /jobs/{name}`` (master key) and the built-in schedule.

As in Parse, a started job answers at once with ``X-Parse-Job-Status-Id`` and runs in the
background; its progress lives in a ``_JobStatus`` object (``running`` → ``succeeded`` or
``failed``). Each run is one unit of work as the server, so a failed run changes nothing but its
status. The scheduler runs housekeeping (sealing the audit log, retention purges) in every
worker; the jobs themselves are safe to run concurrently (they lock or are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mindharbor.errors import ParseError, ScriptFailed, Unauthorized
from mindharbor.hooks import JobRequest
from mindharbor.observe import metrics
from mindharbor.security.auth import Auth
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.db import Store
from mindharbor.storage.repository import Repository

log = logging.getLogger(__name__)


class JobRunner:
    """Starts jobs in the background and runs the schedule; owns the tasks it starts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start_from_api(self, repo: Repository, name: str, params: dict[str, Any]) -> str:
        """Create the job's status in the caller's transaction; run it once that commits."""
        if not repo.auth.is_master:
            raise Unauthorized("unauthorized: master key is required")
        if name not in self.store.hooks.jobs:
            raise ScriptFailed("Invalid job.")
        status = await repo.system().create(
            "_JobStatus", {"jobName": name, "status": "running", "source": "api"}
        )
        status_id = str(status["objectId"])
        repo.after_commit.append(lambda: self._spawn(name, params, status_id))
        return status_id

    def _spawn(self, name: str, params: dict[str, Any], status_id: str | None) -> None:
        task = asyncio.get_running_loop().create_task(self.run(name, params, status_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, name: str, params: dict[str, Any], status_id: str | None) -> None:
        """One run: the job's own transaction, then its outcome in the status object."""
        outcome: dict[str, Any]
        try:
            async with self.store.unit_of_work(Auth.system()) as repo:
                result = await self.store.hooks.jobs[name](JobRequest(repo, params, status_id))
            outcome = {"status": "succeeded", "message": _summary(result)}
        except ParseError as exc:
            outcome = {"status": "failed", "message": exc.message}
        except Exception:
            # The exception text may carry data; the log keeps the traceback, the status not.
            log.exception("job %s failed", name)
            outcome = {"status": "failed", "message": "Internal error."}
        metrics.job_ran(name, outcome["status"])
        if status_id is None:
            return
        async with self.store.unit_of_work(Auth.system()) as repo:
            await repo.update(
                "_JobStatus",
                status_id,
                {**outcome, "finishedAt": {"__type": "Date", "iso": iso(utcnow())}},
            )

    async def schedule(self, plan: dict[str, float]) -> None:
        """Run each scheduled job every ``plan[name]`` seconds until cancelled."""
        due = dict.fromkeys(plan, 0.0)
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            for name, interval in plan.items():
                if name in self.store.hooks.jobs and now >= due[name]:
                    due[name] = now + interval
                    try:
                        await self.run(name, {}, await self._scheduled_status(name))
                    except Exception:  # e.g. the database is briefly away: try next time
                        log.exception("scheduled job %s could not start", name)
            await asyncio.sleep(max(1.0, min(due.values(), default=60.0) - loop.time()))

    async def _scheduled_status(self, name: str) -> str | None:
        if name == "sealAuditLog":
            return None  # every minute: its result shows in verify-audit, not in job rows
        async with self.store.unit_of_work(Auth.system()) as repo:
            status = await repo.create(
                "_JobStatus", {"jobName": name, "status": "running", "source": "schedule"}
            )
        return str(status["objectId"])

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _summary(result: Any) -> str:
    if result is None:
        return "done"
    return str(result)[:500]


def parse_schedule(text: str) -> dict[str, float]:
    """``"sealAuditLog=60,purgeExpiredMessages=3600"`` → {name: seconds}."""
    plan: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, seconds = item.partition("=")
        plan[name.strip()] = max(1.0, float(seconds or 60))
    return plan
