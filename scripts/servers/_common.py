"""What every throwaway server script shares (`postgres.py`, `s3.py`, `redis.py`): a free port on
127.0.0.1, stopping a server's whole process group, and the `start` / `stop DIR` command line.

Each script imports it from its own folder (`sys.path`), whether run as `python scripts/servers/x.py`
or loaded by path (`tests/server_scripts.py`).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """True while `pid` runs; reaps it when it is our child and has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:  # not our child (stopped from another process): ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(pid: int, timeout: float = 15) -> None:
    """TERM the process group `pid` leads (a server and its children: a Celery worker's pool), wait
    up to `timeout` for it to end, KILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline and alive(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # the group: children outlive a TERMed leader otherwise
    except ProcessLookupError:
        pass


def start_stop_cli(argv: list[str] | None, doc: str, start: Callable[[str | None, int | None], Any],
                   stop: Callable[[str], None], exports: Callable[[Any], Mapping[str, str]],
                   errors: tuple[type[Exception], ...], after: str = "") -> int:
    """`start [--port P] [--base-dir D]` (prints the server's `export` lines and how to stop it) and
    `stop DIR`, for a server script whose `start(base_dir, port)` returns an object with `.root`."""
    prog = Path(sys.argv[0]).name
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start a throwaway server in the background; prints its exports")
    s.add_argument("--port", type=int)
    s.add_argument("--base-dir", help="where to make the temp folder (default: the system temp dir)")
    t = sub.add_parser("stop", help="stop the server started in DIR and delete DIR")
    t.add_argument("dir")
    args = p.parse_args(argv)
    if args.cmd == "stop":
        stop(args.dir)
        return 0
    try:
        server = start(args.base_dir, args.port)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for key, value in exports(server).items():
        print(f"export {key}={value}")
    print((after + "\n" if after else "") + f"# stop: python {sys.argv[0]} stop {server.root}")
    return 0
