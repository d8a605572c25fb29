"""Worker processes for ``mindharbor serve --workers N``: each listens on a socket of its own.

uvicorn's supervisor binds one socket and every worker accepts from it. Whichever worker wakes
first accepts every connection waiting in the queue, so a burst of connections (a reverse proxy's
keep-alive pool opening, a load generator starting) lands on one worker and stays there for the
connection's life. Measured with 64 connections on two workers (bench/compare, S2): 63 or 64 on
one worker in most runs, that worker saturated while the other idled, p99 latency six to eight
times the median. With ``SO_REUSEPORT`` each worker gets a listening socket of its own on the
same port and the kernel spreads new connections across them by a hash of the connection's
addresses (what nginx's ``reuseport`` does). Supervision (health pings, signals) is uvicorn's;
what happens to a dead worker's socket is ours (``SpreadSupervisor``, issue 14 defect 4). The
banner is printed only once the port is bound, and the metric directory is prepared before any
worker starts.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


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
    """uvicorn's supervisor, except that each worker listens on a socket of its own.

    The supervisor binds each worker's socket (not listening: it joins the port's group only
    when the worker, its application started, calls ``listen``) and keeps a copy. It wakes the
    moment a worker dies (the process sentinel), and then (issue 14, defect 4):

    - if another worker is accepting, it closes the dead worker's socket at once: the kernel
      takes it out of the group and new connections go to the live workers, instead of waiting
      in the dead socket's queue until a replacement is up (up to 10 s, measured); the
      replacement gets a fresh socket;
    - if none is, it hands the dead worker's socket (and the connections queued on it) to the
      replacement: they wait for it rather than being refused.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.held: dict[int, socket.socket] = {}  # id(process) -> our copy of its socket
        self.startup_failed = False

    def start_worker(self, sock: socket.socket | None = None) -> Process:
        sock = sock or listening_socket(self.config.host, self.config.port)
        process = Process(self.config, [sock])
        process.start()
        self.held[id(process)] = sock
        return process

    def release(self, process: Process) -> socket.socket | None:
        return self.held.pop(id(process), None)

    @staticmethod
    def _close(sock: socket.socket | None) -> None:
        if sock is not None:
            sock.close()

    def accepting(self) -> bool:
        """Whether some worker's socket is listening (``SO_ACCEPTCONN`` of our copy)."""
        return any(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) for sock in self.held.values()
        )

    def init_processes(self) -> None:
        for sock in self.sockets:
            sock.close()  # bound only to fail early on a busy port: each worker binds its own
        self.sockets = []
        for _ in range(self.processes_num):
            self.processes.append(self.start_worker())

    def run(self) -> None:
        self.init_processes()
        while not self.should_exit.is_set():
            # Wake at once when a worker dies (its sentinel), else every half second.
            sentinels = [p.process.sentinel for p in self.processes if p.process.sentinel]
            wait(sentinels, timeout=0.5)
            self.handle_signals()
            self.keep_subprocess_alive()
        self.terminate_all()
        self.join_all()
        for process in self.processes:
            self._close(self.release(process))

    @staticmethod
    def exited(process: Process) -> bool:
        """Whether the worker has died, from its sentinel. ``Process.is_alive`` is not enough:
        the sentinel wakes us while the dying process is still being torn down, before it can
        be reaped, and ``is_alive`` then says yes, so uvicorn pings it, and the ping waits its
        whole timeout (5 s) for an answer no one will send (we hold both ends of its pipe), with
        new connections queuing on the dead worker's socket meanwhile (measured, issue 14)."""
        sentinel = process.process.sentinel
        return bool(wait([sentinel], timeout=0)) or not process.process.is_alive()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        # The dead first, all of them, before pinging the living (a ping may take seconds).
        dead = [idx for idx, process in enumerate(self.processes) if self.exited(process)]
        for idx in dead:
            if not self.replace(idx):
                return
        for idx, process in enumerate(self.processes):
            if idx in dead or process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            if not self.replace(idx):  # alive but not answering: killed and replaced
                return

    def replace(self, idx: int) -> bool:
        """Replace the worker at ``idx`` (dead, or hung and killed here); False to stop."""
        process = self.processes[idx]
        orphan = self.release(process)
        if orphan is not None and self.accepting():
            orphan.close()  # first of all: no new connection may queue on a dead socket
            orphan = None
        process.kill()
        process.join()
        mark_dead(process.pid)
        if process.exitcode == STARTUP_FAILURE:
            logger.error("Child process [%s] failed to start, stopping.", process.pid)
            self.startup_failed = True
            self.should_exit.set()
            self._close(orphan)
            return False
        if self.should_exit.is_set():
            self._close(orphan)
            return False
        logger.info("Child process [%s] died", process.pid)
        self.processes[idx] = self.start_worker(orphan)
        return True

    def restart_all(self) -> None:
        for idx, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self.start_worker()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                self._close(self.release(new))
                new.kill()
                new.join()
                logger.error("Replacement worker was not ready in time; restart aborted.")
                return
            self._close(self.release(old))  # its socket leaves the group as the worker stops
            old.terminate()
            old.join()
            mark_dead(old.pid)
            self.processes[idx] = new

    def handle_ttin(self) -> None:
        self.processes_num += 1
        self.processes.append(self.start_worker())

    def handle_ttou(self) -> None:
        if self.processes_num <= 1:
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        self._close(self.release(process))
        mark_dead(process.pid)


def prepare_metrics_dir(configured: Path | None) -> Path:
    """An empty directory for the workers' metric files (prometheus-client's multiprocess
    mode), named in ``PROMETHEUS_MULTIPROC_DIR`` for every worker to inherit. Must run before
    anything in this process imports prometheus-client."""
    directory = configured or Path(tempfile.mkdtemp(prefix="mindharbor-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous run's samples
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def mark_dead(pid: int | None) -> None:
    """A worker exited: its live gauges (pools, LiveQuery) stop counting."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve_workers(config: uvicorn.Config, announce: Callable[[], None]) -> None:
    """Run ``config.workers`` worker processes, each on its own socket of the same port;
    ``announce`` once the port is bound."""
    sockets = []
    try:
        for _ in range(config.workers):
            sockets.append(listening_socket(config.host, config.port))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    announce()
    supervisor = SpreadSupervisor(config, sockets)
    supervisor.run()
    if supervisor.startup_failed:
        raise SystemExit(STARTUP_FAILURE)


def serve_one(config: uvicorn.Config, announce: Callable[[], None]) -> None:
    """One process (or uvicorn's own supervisor for several, where ``SO_REUSEPORT`` does not
    spread): the socket is bound here first so that ``announce`` follows a successful bind."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    announce()
    try:
        if config.workers > 1:
            Multiprocess(config, [sock]).run()
        else:
            server = uvicorn.Server(config)
            server.run(sockets=[sock])
            if not server.started:
                raise SystemExit(STARTUP_FAILURE)
    finally:
        sock.close()
