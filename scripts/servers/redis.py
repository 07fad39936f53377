"""A throwaway Redis on 127.0.0.1 as the Celery broker, and dagster-celery workers on it (DESIGN §7).

Redis is Debian's `redis-server` (installed by `scripts/servers/install.sh` when missing), with no
persistence (`--save '' --appendonly no`) and its files in a temp folder. Workers are
`dagster-celery worker start`, Dagster's own worker command, given the same executor config block
(broker, backend) that the definitions' celery executor gets (`alvh_pipeline.executors`); they
import the project from its checkout, with the venv, DAGSTER_HOME and ALVH_* settings of `env`.

By hand: `python scripts/servers/redis.py --workers 2` starts both, prints the broker URL and the
settings to export, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# _common, run as a script or loaded by path; appended, never first: this folder's redis.py must not
# shadow redis-py (kombu imports `redis`) in this process or in the processes it spawns
sys.path.append(str(Path(__file__).resolve().parent))
from _common import free_port, stop_group  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "servers" / "install.sh"
BIN = Path(sys.executable).parent  # the venv's dagster-celery / celery


class ServerUnavailable(RuntimeError):
    """redis-server is not installed and install.sh could not install it (the tests skip on it)."""


def redis_binary() -> str:
    """Path of redis-server; runs install.sh once when it is missing."""
    if not shutil.which("redis-server"):
        out = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=900)
        if not shutil.which("redis-server"):
            raise ServerUnavailable(f"redis-server missing and {INSTALL.relative_to(ROOT)} could not install it: "
                                    f"{(out.stdout + out.stderr).strip()[-500:]}")
    return shutil.which("redis-server")


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """TERM the process group (a worker's celery child and its pool), KILL what is left."""
    stop_group(proc.pid, timeout)
    proc.wait(timeout=timeout)


def _wait_for_ping(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode} before answering on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"redis-server did not answer PING on 127.0.0.1:{port} within {timeout}s")


@dataclass(frozen=True)
class Redis:
    port: int
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextmanager
def redis_server(workdir: Path, timeout: float = 20) -> Iterator[Redis]:
    """A Redis on a free 127.0.0.1 port, files in `workdir`, stopped on exit whatever happened."""
    binary = redis_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(workdir / "redis.log", "wb")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_ping(port, proc, timeout)
        yield Redis(port, proc)
    finally:
        stop(proc)
        log.close()


def worker_config(path: Path, broker: str, backend: str) -> Path:
    """The executor config block the workers start with: the same broker and backend as the
    definitions' celery executor (`dagster-celery worker start -y`)."""
    path.write_text(f"execution:\n  config:\n    broker: '{broker}'\n    backend: '{backend}'\n")
    return path


@contextmanager
def celery_workers(names: list[str], config_yaml: Path, env: Mapping[str, str], logdir: Path,
                   timeout: float = 90) -> Iterator[list[subprocess.Popen]]:
    """One `dagster-celery worker start` per name (one pool process each, so a step's work is where
    the test says), run from the checkout; yields once every worker is ready; stopped on exit."""
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    # `worker start` opens the instance of DAGSTER_HOME: workers creating a fresh SQLite instance at
    # once race on its schema (alembic "more than one head"), so it is created here first
    subprocess.run([sys.executable, "-c", "import dagster; dagster.DagsterInstance.get().dispose()"], cwd=ROOT,
                   env=env, check=True, timeout=120)
    procs, logs, handles = [], [], []
    try:
        for name in names:
            logs.append(logdir / f"worker-{name}.log")
            handles.append(open(logs[-1], "wb"))
            procs.append(subprocess.Popen(
                [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config_yaml),
                 "-n", name, "-l", "INFO", "--", "--concurrency=1", "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=env, stdout=handles[-1], stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.time() + timeout
        while not all(" ready." in log.read_text(errors="replace") for log in logs):
            dead = [(n, p.returncode) for n, p in zip(names, procs) if p.poll() is not None]
            if dead or time.time() > deadline:
                tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs)
                raise RuntimeError(f"celery workers not ready (exited: {dead}, waited {timeout}s):\n{tails}")
            time.sleep(0.25)
        yield procs
    finally:
        for proc in procs:
            stop(proc)
        for handle in handles:
            handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    home = Path(os.environ.get("DAGSTER_HOME") or tempfile.mkdtemp(prefix="alvh-dagster-home-"))
    workdir = Path(tempfile.mkdtemp(prefix="alvh-redis-"))
    with redis_server(workdir) as redis:
        env = {**os.environ, "DAGSTER_HOME": str(home), "ALVH_EXECUTOR": "celery", "ALVH_CELERY_BROKER": redis.url}
        config = worker_config(workdir / "celery.yaml", redis.url, redis.url)
        with celery_workers([f"w{i + 1}" for i in range(args.workers)], config, env, workdir):
            print(f"redis on {redis.url}, {args.workers} workers (logs in {workdir}); launch runs with:\n"
                  f"  export DAGSTER_HOME={home} ALVH_EXECUTOR=celery ALVH_CELERY_BROKER={redis.url}\n"
                  f"  dagster job execute -m alvh_pipeline.definitions -a defs -j ingest --tags "
                  f"'{{\"dagster/partition\": \"2024-03-05\"}}'\n"
                  f"Ctrl-C stops them.", flush=True)
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
