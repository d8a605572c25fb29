"""Concurrent first writes into a class that does not exist yet create it once (issue 15): on
PostgreSQL two transactions could both find no ``_SCHEMA`` row and both insert it, and one
answered 137 "duplicate value" instead of saving its object."""

from __future__ import annotations

import asyncio

import httpx

from tests.support import LiveServer, unique_class

WRITERS = 12


async def _create_all(server: LiveServer, class_name: str, field: str) -> list[httpx.Response]:
    headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Master-Key": server.master_key}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        return await asyncio.gather(
            *(
                http.post(f"/classes/{class_name}", json={field: n, "label": f"object {n}"})
                for n in range(WRITERS)
            )
        )


def test_concurrent_first_writes_create_the_class_once(server: LiveServer) -> None:
    class_name = unique_class()
    responses = asyncio.run(_create_all(server, class_name, "rank"))
    assert [r.status_code for r in responses] == [201] * WRITERS, [r.text for r in responses]
    # And again for a new field of the now existing class.
    responses = asyncio.run(_create_all(server, class_name, "score"))
    assert [r.status_code for r in responses] == [201] * WRITERS, [r.text for r in responses]
    headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Master-Key": server.master_key}
    found = httpx.get(
        f"{server.url}/classes/{class_name}", params={"count": "1", "limit": "0"}, headers=headers
    )
    assert found.json()["count"] == 2 * WRITERS
