"""Issue 6 through the other faces: GraphQL and LiveQuery never hand patient B a working URL for
patient A's attachment, while A and A's provider get one that downloads (both storage backends).

The world is the small clinic of ``tests.domain.clinic`` (patient A with a profile and a
provider on their care team, patient B, a provider outside the team) on a server with files
enabled. A sends their provider a ``Message`` whose ``attachments`` (Array of File) holds a PDF
A uploaded. REST and ``include`` are covered by ``test_api.py``; so are forged signatures,
extended or past expiry and an altered ``by`` — here only the one forgery it lacks: a URL
re-pointed at another file name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.domain.clinic import Clinic, clinic
from tests.files.conftest import TEST_KEK, ensure_bucket, file_settings
from tests.graphql.support import GraphQLClient, error_code
from tests.live_query.wsclient import LiveClient, session_client
from tests.support import LiveServer, pointer, unique_class

MARKER = b"PHI-MARKER-faces-0042"
PDF = b"%PDF-1.4\n" + MARKER + os.urandom(3000) + b"\n%%EOF\n"
OTHER_PDF = b"%PDF-1.4\nsecond attachment\n" + os.urandom(500) + b"\n%%EOF\n"
NO_URL = (403, b'{"error":"unauthorized"}')  # the uniform refusal of /files
# Each user's session token: a URL minted for a session downloads only with that session.
SESSIONS: dict[str, str] = {}


@pytest.fixture
def team(tmp_path: Path, blob_backend: dict[str, Any]) -> Iterator[Clinic]:
    """The clinic on a server with files on ``blob_backend`` (local directory or moto S3)."""
    ensure_bucket(file_settings(tmp_path, blob_backend))  # same bucket name as below
    with clinic(
        f"sqlite:///{tmp_path / 'faces.db'}",
        "sqlite",
        tmp_path / "data",
        files_key=TEST_KEK,
        job_schedule="",
        **blob_backend,
    ) as c:
        SESSIONS.update({c.users[who]: c.tokens[who] for who in c.users})
        yield c


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def fetch(url: str) -> httpx.Response:
    """A download as the reader the URL was minted for (its session's token sent along)."""
    minted_for = query(url).get("by")
    headers = {"X-Parse-Session-Token": SESSIONS[minted_for]} if minted_for in SESSIONS else {}
    return httpx.get(url, timeout=30, headers=headers)


def upload(team: Clinic, who: str, name: str, data: bytes) -> dict[str, Any]:
    headers = {**team.as_(who), "Content-Type": "application/pdf"}
    stored = team.api.request("POST", f"/files/{name}", content=data, headers=headers)
    assert stored.status_code == 201, stored.text
    return dict(stored.json())


def send_with_attachment(team: Clinic, data: bytes = PDF) -> tuple[str, str]:
    """Patient A sends their provider a message with one attachment: (message id, file name)."""
    stored = upload(team, "patient", "lab results.pdf", data)
    sent = team.api.post(
        "/classes/Message",
        {
            "conversationId": uuid.uuid4().hex,
            "to": pointer("_User", team.users["provider"]),
            "patient": pointer("PatientProfile", team.patient),
            "body": "my lab results",
            "attachments": [{"__type": "File", "name": stored["name"]}],
        },
        headers=team.as_("patient"),
    )
    assert sent.status_code == 201, sent.text
    return str(sent.json()["objectId"]), str(stored["name"])


def assert_working_url(attachments: Any, name: str, user_id: str, data: bytes = PDF) -> None:
    assert isinstance(attachments, list) and len(attachments) == 1, attachments
    ref = attachments[0]
    assert ref["__type"] == "File" and ref["name"] == name, ref
    assert query(ref["url"])["by"] == user_id
    got = fetch(ref["url"])
    assert got.status_code == 200 and got.content == data


def gql(team: Clinic, who: str, text: str, variables: dict[str, Any] | None = None) -> Any:
    answer = GraphQLClient(team.api.server).post(text, variables, token=team.tokens[who])
    assert answer.status_code == 200, answer.text
    return answer


# Array fields are Parse's ``[ArrayResult]``: plain values come as ``Element { value }``.
ATTACHMENTS = "attachments { ... on Element { value } }"
GET_MESSAGE = f"query($id: ID!) {{ getMessage(objectId: $id) {{ objectId body {ATTACHMENTS} }} }}"
FIND_MESSAGE = (
    f"query($w: JSON) {{ findMessage(where: $w) {{ count results {{ objectId {ATTACHMENTS} }} }} }}"
)


def elements(array: Any) -> Any:
    return [e["value"] for e in array] if isinstance(array, list) else array


# -- GraphQL ------------------------------------------------------------------------------------
def test_graphql_urls_only_for_the_patient_and_their_care_team(team: Clinic) -> None:
    message, name = send_with_attachment(team)

    for who in ("patient", "provider"):
        got = gql(team, who, GET_MESSAGE, {"id": message}).json()
        assert "errors" not in got, got
        assert_working_url(
            elements(got["data"]["getMessage"]["attachments"]), name, team.users[who]
        )
        found = gql(team, who, FIND_MESSAGE, {"w": {"objectId": message}}).json()
        assert "errors" not in found, found
        (row,) = found["data"]["findMessage"]["results"]
        assert_working_url(elements(row["attachments"]), name, team.users[who])

    for who in ("other", "outsider"):  # patient B, and a provider not on A's team
        got = gql(team, who, GET_MESSAGE, {"id": message})
        assert error_code(got) == 101, got.text
        assert got.json()["data"] == {"getMessage": None}
        for where in ({"objectId": message}, {}, None):
            found = gql(team, who, FIND_MESSAGE, {"w": where})
            assert "errors" not in found.json(), found.text
            assert found.json()["data"]["findMessage"] == {"count": 0, "results": []}
        for answer in (got, found):
            assert name not in answer.text and "/files/" not in answer.text


def test_graphql_pointer_to_the_message_resolves_to_null_for_b(team: Clinic) -> None:
    """No stock class points at a Message, so the operator adds one (as ``/schemas`` allows):
    a public object pointing at A's message. Resolving the pointer is a read of the message with
    B's rights, so B gets null (as REST's ``include`` leaves it) and no URL."""
    message, name = send_with_attachment(team)
    holder = unique_class("Holder")
    public = {op: {"*": True} for op in ("get", "find", "count")}
    team.api.create_class(
        holder, {"message": {"type": "Pointer", "targetClass": "Message"}}, clp=public
    )
    holder_id = team.api.create(
        holder, {"message": pointer("Message", message), "ACL": {"*": {"read": True}}}
    )
    fields = f"objectId message {{ objectId {ATTACHMENTS} }}"
    by_find = f"{{ find{holder} {{ results {{ {fields} }} }} }}"
    by_get = f'{{ get{holder}(objectId: "{holder_id}") {{ {fields} }} }}'

    as_a = gql(team, "patient", by_get).json()
    assert "errors" not in as_a, as_a
    assert_working_url(
        elements(as_a["data"][f"get{holder}"]["message"]["attachments"]),
        name,
        team.users["patient"],
    )

    for who in ("other", "outsider"):
        for text, root in ((by_get, f"get{holder}"), (by_find, f"find{holder}")):
            answer = gql(team, who, text)
            body = answer.json()
            assert "errors" not in body, body
            rows = body["data"][root]
            rows = rows["results"] if root.startswith("find") else [rows]
            assert [r["objectId"] for r in rows] == [holder_id]
            assert rows[0]["message"] is None
            assert name not in answer.text and "/files/" not in answer.text


# -- LiveQuery ----------------------------------------------------------------------------------
async def _subscribe(team: Clinic, who: str) -> LiveClient:
    server: LiveServer = team.api.server
    live = await session_client(server.url, server.app_id, token=team.tokens[who])
    answer = await live.subscribe(1, "Message", {})
    assert answer["op"] == "subscribed", answer
    return live


@pytest.mark.anyio
async def test_live_query_urls_only_for_the_patient_and_their_care_team(team: Clinic) -> None:
    subscribers = {who: await _subscribe(team, who) for who in ("patient", "provider", "other")}
    subscribers["outsider"] = await _subscribe(team, "outsider")
    try:
        message, name = send_with_attachment(team)
        for who in ("patient", "provider"):
            created = await subscribers[who].expect("create")
            assert created["object"]["objectId"] == message
            assert_working_url(created["object"]["attachments"], name, team.users[who])

        # The recipient reads it: an update, again with fresh URLs for the parties only.
        read = team.api.put(
            f"/classes/Message/{message}", {"isRead": True}, headers=team.as_("provider")
        )
        assert read.status_code == 200, read.text
        updated = await subscribers["patient"].expect("update")
        assert updated["object"]["objectId"] == message and updated["object"]["isRead"] is True
        for version in (updated["object"], updated["original"]):
            assert_working_url(version["attachments"], name, team.users["patient"])

        # A's events arrived: B (and the outsider) had every chance to hear of it, and must not.
        await subscribers["other"].silent(2.0)
        await subscribers["outsider"].silent(0.5)
    finally:
        for live in subscribers.values():
            await live.close()


# -- forgery ------------------------------------------------------------------------------------
def test_a_url_for_one_file_does_not_open_another(team: Clinic) -> None:
    """A's own URL, re-pointed at another file A may also read (or at one A may not), is the
    uniform 403; expiry and ``by`` forgeries are in test_api.py. Dropping ``by`` is too."""
    first, first_name = send_with_attachment(team)
    second, second_name = send_with_attachment(team, OTHER_PDF)
    foreign = upload(team, "other", "b.pdf", OTHER_PDF)["name"]  # B's own upload
    as_a = team.api.get(f"/classes/Message/{first}", headers=team.as_("patient")).json()
    good = as_a["attachments"][0]["url"]
    q = query(good)
    prefix = good.split("?")[0].removesuffix(quote(first_name, safe=""))
    assert prefix.endswith("/")

    def with_name(n: str) -> str:
        return f"{prefix}{quote(n, safe='')}?{urlsplit(good).query}"

    bad = [
        with_name(second_name),  # A can read it, but this signature is for the first file
        with_name(foreign),  # someone else's file
        f"{good.split('?')[0]}?expires={q['expires']}&sig={q['sig']}",  # `by` dropped
    ]
    assert {(r.status_code, r.content) for r in map(fetch, bad)} == {NO_URL}
    assert fetch(with_name(first_name)).content == PDF
    second_url = team.api.get(f"/classes/Message/{second}", headers=team.as_("patient")).json()
    assert fetch(second_url["attachments"][0]["url"]).content == OTHER_PDF
