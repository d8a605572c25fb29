"""Mail: the embedded outbox (.eml files) and SMTP delivery to a real local server."""

from __future__ import annotations

import email
import email.policy
import stat
import traceback
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session

from mindharbor.auth.mailer import (
    Mail,
    MailDeliveryError,
    OutboxMailer,
    SmtpMailer,
    make_mailer,
)
from mindharbor.settings import Settings
from tests.support import free_port

SENDER = "MindHarbor <no-reply@mindharbor.test>"
PASSWORD = "hunter2-smtp-password-do-not-leak"
LINK = "https://mindharbor.test/reset?token=abc123"

pytestmark = pytest.mark.anyio


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_outbox_writes_parseable_eml(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    mailer = OutboxMailer(outbox, SENDER)
    await mailer.send(Mail("alice@example.org", "Reset your password", f"Open {LINK}\n"))
    files = list(outbox.iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"
    message = read_eml(files[0])
    assert message["To"] == "alice@example.org"
    assert message["From"] == SENDER
    assert message["Subject"] == "Reset your password"
    assert message["Date"] and message["Message-ID"]
    body = message.get_body()
    assert body is not None and LINK in body.get_content()
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


async def test_outbox_file_names_sort_by_time_and_never_collide(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", SENDER)
    for i in range(20):
        await mailer.send(Mail("bob@example.org", f"mail {i}", "body"))
    files = sorted((tmp_path / "outbox").iterdir())
    assert len(files) == 20
    assert [read_eml(f)["Subject"] for f in files] == [f"mail {i}" for i in range(20)]


async def test_outbox_tightens_existing_directory(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir(mode=0o755)
    await OutboxMailer(outbox, SENDER).send(Mail("a@example.org", "s", "b"))
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "mail",
    [
        Mail("a@example.org", "hi\r\nBcc: victim@example.org", "b"),
        Mail("a@example.org\r\nBcc: victim@example.org", "hi", "b"),
        Mail("a@example.org, victim@example.org", "hi", "b"),
        Mail("not-an-address", "hi", "b"),
    ],
)
async def test_header_injection_refused(tmp_path: Path, mail: Mail) -> None:
    with pytest.raises(ValueError):
        await OutboxMailer(tmp_path / "outbox", SENDER).send(mail)
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").iterdir())


class Recorder:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def reject_all(*_args: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, recorder
    finally:
        controller.stop()


@pytest.fixture
def smtp_auth_server() -> Iterator[Controller]:
    controller = Controller(
        Recorder(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=reject_all,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


async def test_smtp_delivers_to_real_server(smtp_server: tuple[Controller, Recorder]) -> None:
    controller, recorder = smtp_server
    mailer = SmtpMailer(
        "127.0.0.1",
        controller.port,
        sender=SENDER,
        username=None,
        password=None,
        starttls=False,
        timeout=5,
    )
    await mailer.send(Mail("carol@example.org", "Your invitation", f"Join: {LINK}\n"))
    assert len(recorder.envelopes) == 1
    envelope = recorder.envelopes[0]
    assert envelope.mail_from == "no-reply@mindharbor.test"
    assert envelope.rcpt_tos == ["carol@example.org"]
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Your invitation"
    body = message.get_body()
    assert body is not None and LINK in body.get_content()


def assert_no_password(exc: BaseException) -> None:
    rendered = "".join(traceback.format_exception(exc))
    assert PASSWORD not in rendered
    assert PASSWORD not in repr(exc)


async def test_unreachable_smtp_error_hides_password() -> None:
    port = free_port()  # nothing listens here
    mailer = SmtpMailer(
        "127.0.0.1", port, sender=SENDER, username="mailer", password=PASSWORD, starttls=False
    )
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(Mail("dave@example.org", "s", "b"))
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert_no_password(caught.value)
    assert PASSWORD not in repr(mailer)


async def test_rejected_login_error_hides_password(smtp_auth_server: Controller) -> None:
    mailer = SmtpMailer(
        "127.0.0.1",
        smtp_auth_server.port,
        sender=SENDER,
        username="mailer",
        password=PASSWORD,
        starttls=False,
        timeout=5,
    )
    with pytest.raises(MailDeliveryError) as caught:
        await mailer.send(Mail("erin@example.org", "s", "b"))
    assert "SMTPAuthenticationError" in str(caught.value)
    assert_no_password(caught.value)


def test_plaintext_login_to_remote_host_refused() -> None:
    with pytest.raises(ValueError):
        SmtpMailer(
            "smtp.example.org", 25, sender=SENDER, username="u", password=PASSWORD, starttls=False
        )
    SmtpMailer("smtp.example.org", 587, sender=SENDER, username="u", password="p", starttls=True)
    SmtpMailer("smtp.example.org", 465, sender=SENDER, username="u", password="p", starttls=False)
    SmtpMailer("smtp.example.org", 25, sender=SENDER, username=None, password=None, starttls=False)


def test_make_mailer(tmp_path: Path) -> None:
    outbox = make_mailer(Settings(data_dir=tmp_path, mail_from=SENDER))
    assert isinstance(outbox, OutboxMailer)
    assert outbox.directory == tmp_path / "outbox"
    assert outbox.sender == SENDER
    smtp = make_mailer(
        Settings(
            data_dir=tmp_path,
            smtp_host="smtp.example.org",
            smtp_port=2525,
            smtp_username="u",
            smtp_password=PASSWORD,
        )
    )
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.host, smtp.port) == ("smtp.example.org", 2525)
