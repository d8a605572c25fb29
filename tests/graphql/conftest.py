"""A module server per backend with small GraphQL limits, and its engine for counting SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette

from tests.graphql.support import GraphQLClient, live_app
from tests.security.test_access_matrix import world  # noqa: F401  (the matrix's fixture)
from tests.support import LiveServer, ParseClient, make_settings

MAX_DEPTH = 6
MAX_COMPLEXITY = 60


@dataclass
class Gql:
    live: LiveServer
    app: Starlette
    api: ParseClient
    client: GraphQLClient


@pytest.fixture(scope="module")
def gql(backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gql]:
    settings = make_settings(
        backend_url,
        Path(tmp_path_factory.mktemp("graphql")),
        mfa_required_roles="",
        login_rate_per_ip=10_000,
        job_schedule="",  # no background statements while SQL is being counted
        graphql_max_depth=MAX_DEPTH,
        graphql_max_complexity=MAX_COMPLEXITY,
    )
    with live_app(settings, backend) as (live, app):
        yield Gql(live, app, live.client(), GraphQLClient(live))
