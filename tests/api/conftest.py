"""Fixtures for API modules that start their own server as a module fixture named ``live``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import LiveServer, ParseClient


@pytest.fixture
def api(live: LiveServer) -> Iterator[ParseClient]:
    """A fresh client of the module's own server (closed after the test)."""
    client = live.client()
    yield client
    client.http.close()
    live.clients.remove(client)
