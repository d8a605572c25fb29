"""Worker processes for ``mindharbor serve --workers N``: each listens on a socket of its own.

uvicorn's supervisor binds one socket and every worker accepts from it. Whichever worker wakes
first accepts every connection waiting in the queue, so a burst of connections (a reverse proxy's
keep-alive pool opening, a load generator starting) lands on one worker and stays there for the
connection's life. Measured with 64 connections on two workers (bench/compare, S2): 63 or 64 on
one worker in most runs, that worker saturated while the other idled, p99 latency six to eight
times the median. With ``SO_REUSEPORT`` each worker gets a listening socket of its own on the
same port and the kernel spreads new connections across them by a hash of the connection's
addresses (what nginx's ``reuseport`` does). Supervision (restarts, health pings, signals) stays
uvicorn's own.
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess, Process


def can_spread() -> bool:
    """``SO_REUSEPORT`` balances listening sockets on Linux; elsewhere (BSD, macOS) it does
    not, so there uvicorn's shared socket is used."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """One member of the port's ``SO_REUSEPORT`` group (bound; the worker calls ``listen``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class SpreadSupervisor(Multiprocess):
    """uvicorn's supervisor, except that worker *i* starts with socket *i* only.

    A worker uvicorn starts later (a crashed worker's replacement, SIGHUP, SIGTTIN) gets every
    socket, as under uvicorn's own supervisor: it serves all of them, only without the spread.
    """

    def init_processes(self) -> None:
        for sock in self.sockets:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)


def serve_workers(config: uvicorn.Config) -> None:
    """Run ``config.workers`` worker processes, each on its own socket of the same port."""
    sockets = [listening_socket(config.host, config.port) for _ in range(config.workers)]
    try:
        SpreadSupervisor(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
