"""S6: LiveQuery fan-out, the same protocol against both servers.

Subscribers are patients, each subscribed to ``Message`` where ``to`` = me over their own
session, spread over the servers' worker processes by the kernel. Their providers write
through REST with their own sessions at a fixed rate (an open loop, so a slow server does not
slow the writes down). Latency is the time from the write's ``201`` reply (the write is
committed) to the event's arrival at its subscriber; every write must reach exactly its one
recipient, and nobody else: a missing, duplicated or misdelivered event fails the run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.compare.dataset import Patient, Seeded, new_message
from bench.find_messages import pointer

CONNECT_CONCURRENCY = 20


@dataclass
class LiveResult:
    subscribers: int = 0
    writes: int = 0
    delivered: int = 0
    missing: int = 0
    unexpected: int = 0
    write_errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    write_p50_ms: float | None = None
    errors: list[str] = field(default_factory=list)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Subscriber:
    def __init__(self, patient: Patient) -> None:
        self.patient = patient
        self.ws: ClientConnection | None = None
        self.events: dict[str, float] = {}  # body marker -> arrival time
        self.others = 0
        self.reader: asyncio.Task[None] | None = None

    async def open(self, url: str, app_id: str) -> None:
        self.ws = await connect(url, compression=None, ping_interval=None, max_queue=None)
        await self.ws.send(
            json.dumps(
                {"op": "connect", "applicationId": app_id, "sessionToken": self.patient.token}
            )
        )
        await self.expect("connected")
        await self.ws.send(
            json.dumps(
                {
                    "op": "subscribe",
                    "requestId": 1,
                    "sessionToken": self.patient.token,
                    "query": {
                        "className": "Message",
                        "where": {"to": pointer("_User", self.patient.user_id)},
                    },
                }
            )
        )
        await self.expect("subscribed")
        self.reader = asyncio.create_task(self.read())

    async def expect(self, op: str) -> None:
        assert self.ws is not None
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if frame.get("op") != op:
            raise RuntimeError(f"{self.patient.username}: expected {op}, got {frame}")

    async def read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("op") != "create":
                    continue
                obj = frame.get("object", {})
                if (obj.get("to") or {}).get("objectId") != self.patient.user_id:
                    self.others += 1
                self.events[str(obj.get("body"))] = now
        except ConnectionClosed:
            pass

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


async def fan_out(
    kind: str,
    base_url: str,
    app_id: str,
    seeded: Seeded,
    subscribers: int,
    rate: float,
    seconds: float,
) -> LiveResult:
    result = LiveResult()
    ws_url = base_url.replace("http://", "ws://") + "/parse"
    subs = [Subscriber(p) for p in seeded.patients[:subscribers]]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(sub: Subscriber) -> None:
        async with gate:
            await sub.open(ws_url, app_id)

    await asyncio.gather(*(open_one(s) for s in subs))
    result.subscribers = len(subs)
    await asyncio.sleep(1.0)  # let every subscription settle in every worker

    written: list[tuple[Subscriber, str, float]] = []
    write_times: list[float] = []
    # Open loop at a fixed rate: on a slow server writes queue for a connection, which is part
    # of their latency, not a failure (no pool timeout); a request that fails is counted.
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"X-Parse-Application-Id": app_id},
        timeout=httpx.Timeout(30.0, pool=None),
    ) as http:

        async def write(seq: int, sub: Subscriber) -> None:
            patient = sub.patient
            provider = seeded.provider_of(patient)
            marker = f"live-{kind}-{seq}-{time.time_ns()}"
            body = new_message(kind, patient, provider.user_id, by_patient=False, text=marker)
            started = time.perf_counter()
            try:
                response = await http.post(
                    "/parse/classes/Message",
                    json=body,
                    headers={"X-Parse-Session-Token": provider.token},
                )
            except httpx.HTTPError as exc:
                result.write_errors += 1
                result.errors.append(f"write: {type(exc).__name__}")
                return
            done = time.perf_counter()
            if response.status_code != 201:
                result.write_errors += 1
                result.errors.append(f"write: HTTP {response.status_code} {response.text[:200]}")
                return
            write_times.append(done - started)
            written.append((sub, marker, done))

        tasks = []
        count = int(rate * seconds)
        start = time.perf_counter()
        for seq in range(count):
            delay = start + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(write(seq, subs[seq % len(subs)])))
        await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        if all(marker in sub.events for sub, marker, _ in written):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # late duplicates or strays would show up here
    latencies = []
    for sub, marker, acked in written:
        arrived = sub.events.get(marker)
        if arrived is None:
            result.missing += 1
        else:
            latencies.append((arrived - acked) * 1000)
    await asyncio.gather(*(s.close() for s in subs))
    expected = {(id(sub), marker) for sub, marker, _ in written}
    result.unexpected = sum(s.others for s in subs) + sum(
        1
        for s in subs
        for marker in s.events
        if marker.startswith("live-") and (id(s), marker) not in expected
    )
    result.writes = len(written) + result.write_errors
    result.delivered = len(latencies)
    result.p50_ms = pct(latencies, 0.5)
    result.p99_ms = pct(latencies, 0.99)
    result.max_ms = max(latencies) if latencies else None
    result.write_p50_ms = statistics.median(write_times) * 1000 if write_times else None
    return result
