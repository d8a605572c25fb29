"""Outgoing mail (invitations, password resets, verification links).

Why it is built this way:

* These mails carry bearer links: whoever reads one can take over the account. The embedded
  default, ``OutboxMailer``, therefore writes them to a directory only the server's user can
  read (0o700, files 0o600) rather than printing them to a log that is often shipped
  elsewhere. Each mail is a standard RFC 5322 ``.eml`` file that any mail client opens; names
  sort by time and carry a random suffix so concurrent mails never collide or overwrite.
* ``SmtpMailer`` uses the standard library's smtplib in a worker thread (it blocks), always
  with a timeout so a dead relay cannot pin request handlers. TLS is verified against the
  system trust store. A password is never sent over an unencrypted connection except to a
  loopback relay, and it never appears in exception messages: failures raise
  ``MailDeliveryError`` naming only the relay and the failure's type.
* Headers are built with ``email.message.EmailMessage`` (policy ``default``), which refuses CR
  or LF in header values, so a crafted subject or address cannot inject headers or recipients.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from mindharbor.settings import Settings

logger = logging.getLogger(__name__)

IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class MailDeliveryError(Exception):
    """The mail could not be handed to the relay; the message holds no credentials."""


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """An RFC 5322 message; raises ``ValueError`` on a malformed recipient or header."""
    _, address = parseaddr(mail.to)
    if "@" not in address or any(ch in mail.to for ch in "\r\n,;"):
        raise ValueError("recipient must be a single e-mail address")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=_domain_of(sender))
    message.set_content(mail.body)
    return message


def _domain_of(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return domain or "mindharbor.local"


class OutboxMailer:
    """Writes each mail as ``<UTC timestamp>-<random>.eml`` into a private directory."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, mail: Mail) -> None:
        message = build_message(mail, self.sender)
        path = await asyncio.to_thread(self._write, message.as_bytes())
        logger.info("mail written to outbox: %s", path.name)

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)  # mkdir's mode is masked by umask and skipped if it exists
        path = self.directory / f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path


class SmtpMailer:
    """Delivers through an SMTP relay (STARTTLS or implicit TLS on 465, optional login)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        username: str | None,
        password: str | None,
        starttls: bool,
        timeout: float = 10.0,
    ) -> None:
        implicit_tls = port == IMPLICIT_TLS_PORT
        if username and not (starttls or implicit_tls or _is_loopback(host)):
            raise ValueError("SMTP login requires STARTTLS or port 465 (except on loopback)")
        self.host = host
        self.port = port
        self.sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls and not implicit_tls
        self._implicit_tls = implicit_tls
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpMailer(host={self.host!r}, port={self.port})"

    async def send(self, mail: Mail) -> None:
        message = build_message(mail, self.sender)
        try:
            await asyncio.to_thread(self._deliver, message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailDeliveryError(
                f"SMTP delivery via {self.host}:{self.port} failed ({type(exc).__name__})"
            ) from exc

    def _connect(self) -> smtplib.SMTP:
        if self._implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self._timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self._timeout)

    def _deliver(self, message: EmailMessage) -> None:
        with self._connect() as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when ``smtp_host`` is set, else the outbox under ``data_dir``."""
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return OutboxMailer(settings.data_dir / "outbox", settings.mail_from)
