"""A retried write with the same X-Parse-Request-Id is refused (159) and applies nothing."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.support import ParseClient, live_server, make_settings, unique_class


def _send(client: ParseClient, cls: str, request_id: str):
    return client.post(
        f"/classes/{cls}",
        {"body": "hello"},
        master=True,
        headers={"X-Parse-Request-Id": request_id},
    )


def test_retry_is_refused_and_applies_nothing(client: ParseClient) -> None:
    cls = unique_class()
    client.create_class(cls, {"body": {"type": "String"}})
    request_id = str(uuid.uuid4())
    assert _send(client, cls, request_id).status_code == 201
    retry = _send(client, cls, request_id)
    assert retry.status_code == 400
    assert retry.json() == {"code": 159, "error": "Duplicate request"}
    assert client.find(cls, count=1, limit=0)["count"] == 1
    assert _send(client, cls, str(uuid.uuid4())).status_code == 201


def test_failed_write_does_not_burn_the_request_id(client: ParseClient) -> None:
    cls = unique_class()
    client.create_class(cls, {"body": {"type": "Number"}})
    request_id = str(uuid.uuid4())
    failed = _send(client, cls, request_id)  # "hello" is not a Number
    assert failed.json()["code"] == 111
    client.create_class(cls + "b", {"body": {"type": "String"}})
    assert _send(client, cls + "b", request_id).status_code == 201


def test_concurrent_duplicates_apply_once(client: ParseClient) -> None:
    cls = unique_class()
    client.create_class(cls, {"body": {"type": "String"}})
    request_id = str(uuid.uuid4())
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(
            r.status_code for r in pool.map(lambda _: _send(client, cls, request_id), range(8))
        )
    assert statuses == [201] + [400] * 7
    assert client.find(cls, count=1, limit=0)["count"] == 1


def test_duplicates_are_refused_across_workers(backend_url: str, backend: str, tmp_path) -> None:
    """Two servers on one database stand in for two workers behind a load balancer."""
    settings = make_settings(backend_url, tmp_path)
    cls = unique_class()
    with live_server(settings, backend) as one, live_server(settings, backend) as two:
        first, second = one.client(), two.client()
        first.create_class(cls, {"body": {"type": "String"}})
        request_id = str(uuid.uuid4())
        assert _send(first, cls, request_id).status_code == 201
        assert _send(second, cls, request_id).json()["code"] == 159
        assert second.find(cls, count=1, limit=0)["count"] == 1


def test_window_expires(backend_url: str, backend: str, tmp_path) -> None:
    settings = make_settings(backend_url, tmp_path, idempotency_ttl_seconds=0)
    cls = unique_class()
    with live_server(settings, backend) as live:
        api = live.client()
        api.create_class(cls, {"body": {"type": "String"}})
        request_id = str(uuid.uuid4())
        assert _send(api, cls, request_id).status_code == 201
        import time

        time.sleep(0.01)
        assert _send(api, cls, request_id).status_code == 201
