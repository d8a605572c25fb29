"""Jobs as Parse runs them: master key, X-Parse-Job-Status-Id, a _JobStatus that finishes."""

from __future__ import annotations

import time

from tests.support import ParseClient


def _wait(client: ParseClient, status_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(f"/classes/_JobStatus/{status_id}", master=True).json()
        if status.get("status") != "running":
            return status
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_job_runs_in_the_background_and_reports_status(client: ParseClient) -> None:
    started = client.post("/jobs/purgeIdempotencyKeys", {}, master=True)
    assert started.status_code == 200 and started.json() == {}
    status_id = started.headers["X-Parse-Job-Status-Id"]
    status = _wait(client, status_id)
    assert status["status"] == "succeeded" and status["jobName"] == "purgeIdempotencyKeys"
    assert "finishedAt" in status and "removed" in status["message"]


def test_jobs_need_the_master_key_and_a_known_name(client: ParseClient) -> None:
    assert client.post("/jobs/purgeIdempotencyKeys", {}).status_code == 403
    unknown = client.post("/jobs/noSuchJob", {}, master=True)
    assert unknown.json() == {"code": 141, "error": "Invalid job."}
    statuses = client.get("/classes/_JobStatus")
    assert statuses.json()["code"] == 119  # clients cannot read job statuses
