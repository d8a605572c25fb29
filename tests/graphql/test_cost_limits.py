"""Issue 14, defect 1: a GraphQL document's cost is bounded before it can stall a worker.

Each attack is sent, with only the application id, to a live server over a socket with the
default limits, several at once; every refusal must come back quickly and ``/parse/health``
must keep answering meanwhile (on the old code the fan-out held the event loop 7.6 s and 20,000
aliases 5.9 s). Then the limits themselves: fragments are counted expanded, aliases and
introspection count, size and tokens are capped, nesting cannot crash the parser.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.graphql.conftest import MAX_COMPLEXITY, Gql
from tests.graphql.support import origin
from tests.support import LiveServer

REFUSAL_SECONDS = 1.0  # a refusal costs milliseconds; 1 s leaves room for a busy CI machine
HEALTH_SECONDS = 1.0


def fan_out(levels: int = 20) -> str:
    """``query{...F0} fragment F0 on Query{...F1 ...F1} ... fragment F20 on Query{__typename}``:
    2^20 copies of one field once expanded."""
    parts = ["query{...F0}"]
    parts += [f"fragment F{n} on Query{{...F{n + 1} ...F{n + 1}}}" for n in range(levels)]
    parts.append(f"fragment F{levels} on Query{{__typename}}")
    return " ".join(parts)


def aliases(count: int = 20_000) -> str:
    return "{" + " ".join(f"a{n}: __typename" for n in range(count)) + "}"


def post(server: LiveServer, query: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(
        origin(server) + "/graphql",
        json={"query": query},
        headers={"X-Parse-Application-Id": server.app_id},
        timeout=60,
    )
    return response, time.monotonic() - started


def under_attack(
    server: LiveServer, query: str, check: Callable[[httpx.Response], None], senders: int = 4
) -> None:
    """Send ``query`` from several clients at once while timing health checks; then once
    alone, timing its refusal."""
    stop = threading.Event()
    health: list[float] = []

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                started = time.monotonic()
                assert client.get(server.url + "/health").status_code == 200
                health.append(time.monotonic() - started)
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(senders) as pool:
            results = list(pool.map(lambda _n: post(server, query), range(senders * 3)))
    finally:
        stop.set()
        prober.join()
    for response, _seconds in results:
        check(response)
    assert health, "no health check was answered during the attack"
    assert max(health) < HEALTH_SECONDS, f"health stalled {max(health):.2f} s"
    # And one such request alone is refused at once.
    response, seconds = post(server, query)
    check(response)
    assert seconds < REFUSAL_SECONDS, f"refused after {seconds:.2f} s"


def _refused(limit: str) -> Callable[[httpx.Response], None]:
    """The check of a refusal by ``limit``: a 400 with code 102, small."""

    def check(response: httpx.Response) -> None:
        assert response.status_code == 400, response.text
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == 102
        assert error["extensions"]["limit"] == limit, error
        assert len(response.content) < 2_000

    return check


def test_fragment_fan_out_is_refused_at_once_and_health_keeps_answering(
    server: LiveServer,
) -> None:
    under_attack(server, fan_out(), _refused("complexity"))


def test_twenty_thousand_aliases_are_refused_unparsed(server: LiveServer) -> None:
    under_attack(server, aliases(), _refused("size"))  # 369 KB of query text


def test_a_document_over_the_token_limit_is_refused_unparsed(server: LiveServer) -> None:
    query = "{" + " ".join(f"a{n}:__typename" for n in range(4_000)) + "}"  # 12,002 tokens
    assert len(query) < server.settings.graphql_max_document_bytes
    under_attack(server, query, _refused("tokens"))


def test_an_oversized_document_is_refused(server: LiveServer) -> None:
    padding = "#" + "x" * 120_000 + "\n"
    response, seconds = post(server, padding + "{ __typename }")
    _refused("size")(response)
    assert seconds < REFUSAL_SECONDS


def test_nesting_too_deep_for_the_parser_is_a_400_not_a_crash(server: LiveServer) -> None:
    query = "{" + "a{" * 1_000 + "b" + "}" * 1_000 + "}"  # 2,003 tokens: under that limit
    response, seconds = post(server, query)
    _refused("depth")(response)
    assert seconds < REFUSAL_SECONDS


def test_fragments_count_once_per_spread(gql: Gql) -> None:
    ten = " ".join(f"f{n}: __typename" for n in range(10))
    spreads = " ".join(["...Ten"] * (MAX_COMPLEXITY // 10 + 1))
    response = gql.client.post(f"query {{ {spreads} }} fragment Ten on Query {{ {ten} }}")
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["limit"] == "complexity"
    # The same fragment spread few enough times is fine.
    assert gql.client.data(f"query {{ ...Ten }} fragment Ten on Query {{ {ten} }}") == {
        f"f{n}": "Query" for n in range(10)
    }


def test_introspection_counts_toward_complexity(gql: Gql) -> None:
    fields = " ".join(f'"t{n}: __type(name: "Query") {{ name }}' for n in range(MAX_COMPLEXITY))
    response = gql.client.post("{ " + fields.replace('"t', "t") + " }", master=True)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["limit"] == "complexity"


def test_deep_introspection_lists_are_refused(gql: Gql) -> None:
    nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    response = gql.client.post(nested, master=True)
    assert response.status_code == 400, response.text
    assert "introspection depth" in response.json()["errors"][0]["message"]


def test_every_operation_of_a_document_is_bounded(gql: Gql) -> None:
    """An expensive operation cannot ride along beside the one that is run."""
    document = "query Cheap { __typename } " + fan_out(12).replace("query{", "query Costly {", 1)
    response = httpx.post(
        origin(gql.live) + "/graphql",
        json={"query": document, "operationName": "Cheap"},
        headers={"X-Parse-Application-Id": gql.live.app_id},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["limit"] == "complexity"
