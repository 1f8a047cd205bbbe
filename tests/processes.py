"""Child processes the tests start (the API server, the Dagster daemon,
services), each in its own session so that stopping it stops what it
started too: a daemon's or an API server's gRPC code server otherwise
outlives it, holding some 200 MB, after every run of the suite."""

from __future__ import annotations

import os
import signal
import subprocess


def start(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(args, start_new_session=True, **kwargs)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process and its children, SIGKILL if they linger."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
    _kill_group(proc)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL to the process and its children, as a crash of the host would."""
    _kill_group(proc)
    proc.wait(timeout=10)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
