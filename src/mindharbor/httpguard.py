"""Slow and oversized requests are cut off before they hold a worker (issue 14, defect 6).

uvicorn times out idle keep-alive connections only: a client trickling its headers a byte at a
time, or a body at one byte a second, held a connection (and a slot of the worker's
concurrency) forever, and 100 KB of headers or 500 header lines were accepted. This protocol is
uvicorn's httptools protocol plus four limits:

- the request head (request line and headers) must arrive within ``header_timeout_seconds`` of
  the connection opening or of the previous response: else ``408`` and the connection closes;
- a body must arrive within ``body_timeout_seconds`` of its head: else ``408`` (when no
  response has started) and the connection closes;
- a head larger than ``max_header_bytes`` or with more than ``max_headers`` lines is answered
  ``431 Request Header Fields Too Large`` and the connection closes.

``serve`` selects it (``http=`` of uvicorn's config); the limits come from the settings through
:func:`configure`, called by the app factory in each worker.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mindharbor.settings import Settings

PHRASES = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100


_limits = Limits()


def configure(settings: Settings) -> None:
    """Take this process's limits from the settings (once, in the app factory)."""
    global _limits
    _limits = Limits(
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
    )


class HeadTooLarge(Exception):
    """Raised from a parser callback; the parser wraps it, ``data_received`` answers 431."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head/body time limits and head size limits."""

    _head_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _reading_head = True
    _head_bytes = 0  # raw bytes received since the head began (a trickled head)
    _parsed_bytes = 0  # request line and header lines parsed so far
    _header_count = 0
    _too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        self._parsed_bytes = 0
        self._header_count = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(_limits.header_timeout, self._head_timed_out)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _refuse(self, status: int) -> None:
        """Answer ``status`` with a Parse-shaped body and close the connection."""
        self._cancel_timers()
        if self.transport.is_closing():
            return
        message = PHRASES[status].decode()
        # Parse's codes: 107 as for an oversized body (413), 124 Timeout.
        body = b'{"code":%d,"error":"%s"}' % (107 if status == 431 else 124, message.encode())
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, PHRASES[status], len(body), body)
        )
        self.transport.close()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._reading_head and (self.cycle is None or self.cycle.response_complete):
            self._refuse(408)

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.more_body:
            return
        if cycle.response_started:
            self._cancel_timers()
            self.transport.close()
            cycle.disconnected = True
            cycle.message_event.set()
        else:
            self._refuse(408)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:
                self._refuse(431)
                return
            self._cancel_timers()
            super().send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._reading_head and self._head_bytes > _limits.max_header_bytes:
            self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:
            self._start_head()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._check_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._check_head(len(name) + len(value))
        super().on_header(name, value)

    def _check_head(self, size: int) -> None:
        self._parsed_bytes += size + 4
        limits = _limits
        if self._header_count > limits.max_headers or self._parsed_bytes > limits.max_header_bytes:
            self._too_large = True
            raise HeadTooLarge

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        if not self.parser.should_upgrade():
            self._body_timer = self.loop.call_later(_limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._start_head()
