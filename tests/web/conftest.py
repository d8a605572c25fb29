"""The server the web-view tests share (per backend): production-like rules (staff must enrol
MFA) and short emergency grants."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import LiveServer, live_server, make_settings
from tests.web.flows import EMERGENCY_MINUTES


@pytest.fixture(scope="session")
def web(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Production-like rules (staff must enrol MFA), short emergency grants."""
    settings = make_settings(
        backend_url,
        tmp_path_factory.mktemp("web"),
        login_rate_per_ip=100_000,
        emergency_access_minutes=EMERGENCY_MINUTES,
    )
    with live_server(settings, backend) as live:
        yield live
