"""Child processes for the bench: the orchestrator CLI and a separate sandbox.

Each child is measured on its own: wall time from launch to exit, and its peak RSS
from the kernel's accounting of that one child (`wait4`), which neither sampling
nor RUSAGE_CHILDREN (a maximum over every child so far) would give exactly.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ORCHESTRATOR = (sys.executable, "-m", "orchestrator")
_URL = re.compile(r"https?://[0-9.]+:\d+/v1")


class ChildFailed(RuntimeError):
    """A child exited with an unexpected code or overran its time budget."""


@dataclass(frozen=True)
class ChildRun:
    wall: float  # seconds from launch to exit
    peak_rss_mb: float  # ru_maxrss of this child alone
    returncode: int
    output: str  # stdout and stderr, interleaved


def child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})  # no wrapping, no colour codes
    env.update(extra or {})
    return env


def run_child(
    args: Sequence[str],
    *,
    log: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
    expect: Sequence[int] = (0,),
) -> ChildRun:
    """Run `args` to the end; raise ChildFailed on an unexpected code or a timeout."""
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=child_env(env))
        waited: list[tuple[int, int, resource.struct_rusage]] = []
        # wait4 blocks; a thread lets the bench enforce the time budget meanwhile.
        waiter = threading.Thread(target=lambda: waited.append(os.wait4(proc.pid, 0)))
        waiter.start()
        waiter.join(timeout)
        if waiter.is_alive():
            proc.kill()
            waiter.join()
        wall = time.monotonic() - started
    _pid, status, usage = waited[0]
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    output = log.read_text(errors="replace")
    if wall >= timeout:
        raise ChildFailed(f"{' '.join(args[1:])} overran {timeout:g} s:\n{output[-2000:]}")
    if proc.returncode not in expect:
        raise ChildFailed(f"{' '.join(args[1:])} exited {proc.returncode}:\n{output[-2000:]}")
    return ChildRun(wall, usage.ru_maxrss / 1024, proc.returncode, output)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@dataclass(frozen=True)
class SandboxProcess:
    base_url: str  # http://127.0.0.1:PORT/v1
    pid: int


@contextmanager
def sandbox_process(
    args: Sequence[str], *, log: Path, timeout: float = 20.0
) -> Iterator[SandboxProcess]:
    """Start `orchestrator sandbox ARGS` in its own process, wait for its URL, stop it after."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*ORCHESTRATOR, "sandbox", *args], stdout=out, stderr=out, env=child_env(None)
        )
    try:
        deadline = time.monotonic() + timeout
        while (match := _URL.search(log.read_text(errors="replace"))) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ChildFailed(f"the sandbox did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.02)
        yield SandboxProcess(match.group(0), proc.pid)
    finally:
        stop(proc)


__all__ = [
    "ORCHESTRATOR",
    "ChildFailed",
    "ChildRun",
    "SandboxProcess",
    "child_env",
    "run_child",
    "sandbox_process",
    "stop",
]
