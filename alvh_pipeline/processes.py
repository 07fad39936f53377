"""Whether a process is still there (no Dagster import): `recovery` closes the runs of dead
processes, and `lake` removes the staging folders they left."""

from __future__ import annotations

import os
import socket

# a pid whose process started after the run (or staging folder) did is a reused pid, not the one
# recorded; the slack covers /proc's whole-second boot time
_START_SLACK_SECONDS = 2.0


def this_host() -> str:
    return socket.gethostname()


def _proc_start_time(pid: int) -> float | None:
    """Linux: when `pid` started (epoch seconds), None where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            btime = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def _proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether `pid` is a live process on this host; with `started_by` (epoch seconds), also one
    that had started by then (a process started later holds a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if _proc_state(pid) in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    if started_by is not None:
        start = _proc_start_time(pid)
        if start is not None and start > started_by + _START_SLACK_SECONDS:
            return False
    return True


def process_start_time(pid: int | None = None) -> float | None:
    """When `pid` (default: this process) started, epoch seconds; None where /proc is not available."""
    return _proc_start_time(os.getpid() if pid is None else pid)
