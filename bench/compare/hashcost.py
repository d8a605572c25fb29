"""The password hash's CPU cost on each server, measured alone, for reading S1 and S5.

A login is bound by one password verify: MindHarbor's argon2id with the profile its servers run
(``mindharbor.auth.passwords.DEFAULT_PROFILE``; OWASP's 19 MiB, 2 passes, 1 lane by default)
and Parse's bcrypt (cost 10, @node-rs/bcrypt). Each is timed in CPU seconds, single-threaded
callers, median of 15, so S1 can be read knowing how much of each login is the hash.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time

from bench.compare.parse_server import PARSE_DIR
from mindharbor.auth.passwords import hash_password, verify_password

PASSWORD = "bench-harbor-passphrase"


def mindharbor_verify_cpu(samples: int = 15) -> float:
    stored = hash_password(PASSWORD)
    verify_password(stored, PASSWORD)
    cpu = []
    for _ in range(samples):
        started = time.process_time()  # all threads: argon2's lanes run on threads of their own
        ok, _upgraded = verify_password(stored, PASSWORD)
        cpu.append(time.process_time() - started)
        assert ok
    return statistics.median(cpu)


def parse_verify_cpu() -> float:
    out = subprocess.run(
        ["node", str(PARSE_DIR / "hashcost.js")],
        cwd=PARSE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out)["cpu_seconds"])
