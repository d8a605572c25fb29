"""What Parse Dashboard's Cloud Code, Webhooks, Jobs and Logs pages ask for, master key only.

MindHarbor's cloud code is Python: the product's rules and the modules named by
``MINDHARBOR_HOOK_MODULES`` register functions, triggers and jobs at start-up
(``domain/registry.py``). These routes show that registry in Parse's shapes:

* ``/hooks/functions`` and ``/hooks/triggers`` (Parse's HooksRouter) list the registered
  functions and triggers. They are read-only: a webhook (a URL the server would call with
  objects) is refused with Parse's 143, since hooks are code deployed with the server and a
  URL could send PHI to any host.
* ``/cloud_code/jobs`` and ``/cloud_code/jobs/data`` (Parse's CloudCodeRouter) list the jobs and
  the schedule the server runs (``MINDHARBOR_JOB_SCHEDULE``), in ``_JobSchedule``'s shape;
  schedules are set by that setting, so changing them here is refused with 119.
* ``/releases/latest`` and ``/scripts/{name}`` (what the Dashboard's Cloud Code page reads, from
  Parse.com's API) offer the registry as generated, read-only files: ``hooks.md`` and one per
  function, trigger and job, each naming its Python origin and summary. No source is served.
* ``/scriptlog`` (Parse's LogsRouter) answers this process's recent log lines
  (``mindharbor/scriptlog.py``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any

from mindharbor import __version__, scriptlog
from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.errors import InvalidQuery, OperationForbidden, Unauthorized, WebhookError
from mindharbor.hooks import Hooks
from mindharbor.jobs import parse_schedule
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.repository import Repository

HOOKS_FILE = "hooks.md"
_STARTED = iso(utcnow())
_TRIGGERS = (
    ("beforeSave", "before_save"),
    ("afterSave", "after_save"),
    ("beforeDelete", "before_delete"),
    ("afterDelete", "after_delete"),
)


def _require_master(req: ApiRequest) -> None:
    if not req.auth.is_master:
        raise Unauthorized("unauthorized: master key is required")


def _origin(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def _functions(hooks: Hooks) -> list[dict[str, Any]]:
    return [{"functionName": name} for name in sorted(hooks.functions)]


def _triggers(hooks: Hooks) -> list[dict[str, Any]]:
    out = []
    for trigger, attr in _TRIGGERS:
        registry: dict[str, list[Any]] = getattr(hooks, attr)
        for class_name in sorted(registry):
            if registry[class_name]:
                out.append({"className": class_name, "triggerName": trigger})
    return out


async def list_functions(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    return Reply(_functions(repo.store.hooks))


async def get_function(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    name = req.path_params["name"]
    if name not in repo.store.hooks.functions:
        raise WebhookError(f"no function named: {name} is defined")
    return Reply({"functionName": name})


async def list_triggers(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    return Reply(_triggers(repo.store.hooks))


async def get_trigger(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    class_name, trigger = req.path_params["className"], req.path_params["triggerName"]
    wanted = {"className": class_name, "triggerName": trigger}
    if wanted not in _triggers(repo.store.hooks):
        raise WebhookError(f"class {class_name} does not exist")
    return Reply(wanted)


async def refuse_webhook(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    raise WebhookError(
        "Webhooks are not available: cloud code is Python, deployed with the server "
        "(MINDHARBOR_HOOK_MODULES)."
    )


def _schedule(repo: Repository) -> dict[str, float]:
    plan = parse_schedule(repo.store.settings.job_schedule)
    return {name: seconds for name, seconds in plan.items() if name in repo.store.hooks.jobs}


async def list_job_schedules(repo: Repository, req: ApiRequest) -> Reply:
    """The schedule the server runs, one ``_JobSchedule``-shaped entry per job."""
    _require_master(req)
    out = []
    for name, seconds in sorted(_schedule(repo).items()):
        job = repo.store.hooks.jobs[name]
        out.append(
            {
                "objectId": name,
                "jobName": name,
                "description": _summary(job),
                "params": "{}",
                # Every worker runs the schedule from its start, at any time of day.
                "startAfter": _STARTED,
                "daysOfWeek": [1, 1, 1, 1, 1, 1, 1],
                "timeOfDay": "00:00:00.000Z",
                "lastRun": None,
                "repeatMinutes": max(1, round(seconds / 60)),
            }
        )
    return Reply(out)


async def jobs_data(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    return Reply({"in_use": sorted(_schedule(repo)), "jobs": sorted(repo.store.hooks.jobs)})


async def refuse_schedule(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    raise OperationForbidden(
        "Job schedules are set by MINDHARBOR_JOB_SCHEDULE; start a job with POST /jobs/{name}."
    )


def _summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def hooks_listing(hooks: Hooks) -> str:
    """``hooks.md``: the registry as a document (names, kinds, Python origin, summary)."""
    lines = ["# Cloud code registered in this server", ""]
    lines += ["## Functions (POST /functions/{name})", ""]
    for name in sorted(hooks.functions):
        fn = hooks.functions[name]
        lines.append(f"- `{name}`: `{_origin(fn)}`. {_summary(fn)}".rstrip())
    lines += ["", "## Triggers", ""]
    for trigger, attr in _TRIGGERS:
        registry: dict[str, list[Any]] = getattr(hooks, attr)
        for class_name in sorted(registry):
            for fn in registry[class_name]:
                lines.append(f"- {trigger} `{class_name}`: `{_origin(fn)}`")
    lines += ["", "## Jobs (POST /jobs/{name})", ""]
    for name in sorted(hooks.jobs):
        job = hooks.jobs[name]
        lines.append(f"- `{name}`: `{_origin(job)}`. {_summary(job)}".rstrip())
    return "\n".join(lines) + "\n"


def registry_files(hooks: Hooks) -> dict[str, str]:
    """The registry as read-only "files" for the Dashboard's Cloud Code page: ``hooks.md`` with
    everything, and one entry per function, trigger and job (its Python origin and summary), so
    the page's file tree lists every hook."""
    files = {HOOKS_FILE: hooks_listing(hooks)}
    for name, fn in hooks.functions.items():
        files[f"functions/{name}"] = f"{_origin(fn)}\n\n{_summary(fn)}\n"
    for trigger, attr in _TRIGGERS:
        registry: dict[str, list[Any]] = getattr(hooks, attr)
        for class_name, fns in registry.items():
            if fns:
                origins = "\n".join(_origin(fn) for fn in fns)
                files[f"triggers/{class_name}/{trigger}"] = origins + "\n"
    for name, job in hooks.jobs.items():
        files[f"jobs/{name}"] = f"{_origin(job)}\n\n{_summary(job)}\n"
    return dict(sorted(files.items()))


async def latest_release(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    files = registry_files(repo.store.hooks)
    checksums = {
        name: hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
        for name, text in files.items()
    }
    release = {
        "version": 1,
        "parseVersion": __version__,
        "timestamp": iso(utcnow()),
        "checksums": json.dumps({"cloud": checksums}),
        "userFiles": json.dumps({"cloud": dict.fromkeys(files, 1)}),
    }
    return Reply([release])


async def script(repo: Repository, req: ApiRequest) -> Reply:
    _require_master(req)
    files = registry_files(repo.store.hooks)
    name = req.path_params["name"]
    if name not in files:
        raise InvalidQuery(f"No script named {name}.")
    return Reply(files[name])


async def script_log(repo: Repository, req: ApiRequest) -> Reply:
    """Parse's ``level`` / ``size`` (or ``n``) / ``order`` query parameters."""
    _require_master(req)
    params = {**req.params, **req.body}
    size = params.get("n", params.get("size", 10))
    try:
        count = max(0, min(int(size), scriptlog.CAPACITY))
    except (TypeError, ValueError):
        raise InvalidQuery("size must be a number.") from None
    level = str(params.get("level") or "info").lower()
    order = str(params.get("order") or "desc").lower()
    return Reply(scriptlog.ring().recent(level, count, order))
