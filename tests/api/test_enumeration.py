"""Account enumeration (issue 19, item 11), on SQLite and PostgreSQL.

* ``requestPasswordReset`` answers ``{}`` for every address, and now in the same time: the work
  for a known address (lookup, token, audit, mail) happens after the answer. The timing check is
  deliberately loose so a loaded machine does not make it flaky: interleaved requests, medians,
  and a bound far below the difference the old code showed (a known address cost two to three
  times an unknown one).
* Sign-up keeps Parse's 202 for a taken name but is rate limited per address (429, code 155, as
  the login limiter answers), before any name is looked at.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest

from tests.api.identity_helpers import sign_up
from tests.api.test_password_reset import wait_for_mails
from tests.support import LiveServer, ParseClient, live_server, make_settings

ROUNDS = 25


@pytest.fixture(scope="module")
def live(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        backend_url,
        tmp_path_factory.mktemp("enumeration"),
        mfa_required_roles="",
        login_rate_per_ip=100_000,
        signup_rate_per_ip=4,
    )
    with live_server(settings, backend) as server:
        yield server


def _timed(api: ParseClient, address: str) -> float:
    started = time.perf_counter()
    answer = api.post("/requestPasswordReset", {"email": address})
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200 and answer.json() == {}, answer.text
    return elapsed


def test_password_reset_takes_as_long_for_an_unknown_address(live: LiveServer) -> None:
    api = live.client()
    # Master-key accounts: the sign-up limit of this server is for the test below.
    known = []
    for n in range(3):
        name = f"enum{n}_{time.monotonic_ns()}"
        made = api.post(
            "/users",
            {"username": name, "password": "a long enough passphrase", "email": f"{name}@ex.org"},
            master=True,
        )
        assert made.status_code == 201, made.text
        known.append(f"{name}@ex.org")
    for _ in range(3):  # warm both paths up
        _timed(api, known[0])
        _timed(api, "nobody@ex.org")
    hits, misses = [], []
    for n in range(ROUNDS):
        hits.append(_timed(api, known[n % len(known)]))
        time.sleep(0.02)  # the background work of one request does not land on the next
        misses.append(_timed(api, f"ghost{n}@ex.org"))
        time.sleep(0.02)
    hit, miss = statistics.median(hits), statistics.median(misses)
    assert hit <= miss * 1.4 + 0.002, f"known {hit * 1000:.1f} ms, unknown {miss * 1000:.1f} ms"
    # The work still happens: every known address got its mail.
    for address in known:
        assert wait_for_mails(live, address, 1), address


def test_sign_up_is_rate_limited_per_address(live: LiveServer) -> None:
    api = live.client()
    first = sign_up(api)
    taken = api.post("/users", {"username": first["username"], "password": "another passphrase"})
    assert taken.status_code == 400 and taken.json()["code"] == 202, taken.text
    answers = [
        api.post(
            "/users",
            {"username": f"burst{n}_{time.monotonic_ns()}", "password": "a long enough passphrase"},
        )
        for n in range(4)
    ]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.text for a in answers]
    assert limited[0].json()["code"] == 155
    # A taken name gets no answer either once the limit is reached: no oracle past the rate.
    again = api.post("/users", {"username": first["username"], "password": "another passphrase"})
    assert again.status_code == 429, again.text
    # Staff creating accounts are not limited.
    made = api.post(
        "/users",
        {"username": f"staff_{time.monotonic_ns()}", "password": "a long enough passphrase"},
        master=True,
    )
    assert made.status_code == 201, made.text
