"""Test support: real databases, a real HTTP server on a socket, a small Parse REST client."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from mindharbor.app import create_app
from mindharbor.settings import Settings
from mindharbor.storage.db import Store

REQUIRE_SERVICES = os.environ.get("MINDHARBOR_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get(
    "MINDHARBOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
APP_ID = "test-app"
MASTER_KEY = "test-master-key-not-secret"


def postgres_available() -> bool:
    try:
        import asyncpg

        async def probe() -> None:
            conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
            await conn.close()

        asyncio.run(probe())
        return True
    except Exception:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    import asyncpg

    name = f"mh_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    # Tests sign many accounts up from one address; the sign-up limit is tested on its own.
    overrides.setdefault("signup_rate_per_ip", 1_000_000)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        app_id=APP_ID,
        master_key=MASTER_KEY,
        **overrides,
    )


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    store = Store(settings)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


def serve_process(
    data_dir: Path, port: int, workers: int, **settings: str
) -> subprocess.Popen[str]:
    """``mindharbor serve`` as a deployment runs it: its own process (and workers), configured
    only by ``MINDHARBOR_*`` variables (the caller's own are dropped), output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDHARBOR_")}
    env.update(MINDHARBOR_DATA_DIR=str(data_dir), MINDHARBOR_PORT=str(port))
    env.update({f"MINDHARBOR_{name.upper()}": value for name, value in settings.items()})
    return subprocess.Popen(
        [sys.executable, "-m", "mindharbor", "serve", "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(server: subprocess.Popen[str], base: str, timeout: float = 90) -> None:
    """Until ``base``'s /parse/health answers 200; fails with the server's output if the
    process stops first, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, server.communicate()[0]
        try:
            if httpx.get(f"{base}/parse/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not become healthy"
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A MindHarbor server on a real socket, in a background thread."""

    url: str
    app_id: str
    master_key: str
    settings: Settings
    backend: str
    clients: list[ParseClient] = field(default_factory=list)
    app: Any = None  # the Starlette app (in this process): tests may look at its store

    @property
    def store(self) -> Any:
        return self.app.state.server.store

    def client(self) -> ParseClient:
        api = ParseClient(self)
        self.clients.append(api)
        return api


@contextmanager
def live_server(settings: Settings, backend: str) -> Iterator[LiveServer]:
    port = free_port()
    if settings.public_url is None:
        # URLs the server mints (signed file links, mails) must point at this test socket.
        settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    live = LiveServer(
        f"http://127.0.0.1:{port}{settings.mount_path}",
        settings.app_id,
        settings.master_key or "",
        settings,
        backend,
        app=app,
    )
    try:
        yield live
    finally:
        for api in live.clients:
            api.http.close()
        server.should_exit = True
        thread.join(timeout=30)


class ParseClient:
    """A tiny Parse REST client over httpx; ``master=True`` adds the master key."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=60)

    def headers(self, master: bool, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"X-Parse-Application-Id": self.server.app_id}
        if master:
            headers["X-Parse-Master-Key"] = self.server.master_key
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        master: bool = False,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        if params:
            params = {
                k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in params.items()
            }
        body = (
            content if content is not None else (orjson.dumps(json) if json is not None else None)
        )
        hdrs = self.headers(master, headers)
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        return self.http.request(method, path, params=params, content=body, headers=hdrs)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def create_class(
        self, name: str, fields: dict[str, Any], clp: dict[str, Any] | None = None
    ) -> None:
        body: dict[str, Any] = {"className": name, "fields": fields}
        if clp is not None:
            body["classLevelPermissions"] = clp
        response = self.post(f"/schemas/{name}", body, master=True)
        assert response.status_code == 200, response.text

    def create(self, class_name: str, body: dict[str, Any], master: bool = True) -> str:
        response = self.post(f"/classes/{class_name}", body, master=master)
        assert response.status_code == 201, response.text
        return str(response.json()["objectId"])

    def find(self, class_name: str, master: bool = True, **params: Any) -> dict[str, Any]:
        response = self.get(f"/classes/{class_name}", params=params, master=master)
        assert response.status_code == 200, response.text
        return dict(response.json())


def unique_class(prefix: str = "T") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


def date(iso: str) -> dict[str, str]:
    return {"__type": "Date", "iso": iso}
