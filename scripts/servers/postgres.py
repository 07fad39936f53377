"""A throwaway PostgreSQL server on 127.0.0.1 for the scale-out tests (DESIGN §7), from Debian's
`postgresql` package: a fresh cluster in a temp folder, one role and one database for Dagster,
stopped and deleted afterwards. Never the packaged service, never a fixed port.

    from postgres import postgres_server          # scripts/servers on sys.path
    with postgres_server() as pg:                  # pg.host, pg.port, pg.user, pg.password, pg.db
        env = {**os.environ, **pg.dagster_env()}   # the DAGSTER_PG_* of deploy/dagster.postgres.yaml

    python scripts/servers/postgres.py start       # prints `export DAGSTER_PG_...` lines and the dir
    python scripts/servers/postgres.py stop <dir>

`initdb` refuses to run as root: as root the cluster belongs to the `postgres` user (runuser);
otherwise to the current user. Missing binaries: `scripts/servers/install.sh` is run once; if the
binaries are still missing, `PostgresUnavailable` says why (the tests skip with it); a failure of
an installed server is a `PostgresError`.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# _common, run as a script or loaded by path; appended, never first: this folder's redis.py must not
# shadow redis-py (kombu imports `redis`) in this process or in the processes it spawns
sys.path.append(str(Path(__file__).resolve().parent))
from _common import free_port, start_stop_cli  # noqa: E402

INSTALL_SCRIPT = Path(__file__).resolve().parent / "install.sh"
SERVER_USER = "postgres"  # the Debian package's system user, owner of clusters started as root
DB_USER = "alvh"
DB_NAME = "dagster"
BINDIR_FILE = "bindir"  # in the cluster's folder: which pg_ctl `stop` uses, from any process
# A throwaway test cluster: durability buys nothing here and fsync per commit is the main cost of
# Dagster's many small event inserts, so it is off. Never settings for a server that keeps data.
THROWAWAY_SETTINGS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                      "-c max_connections=50 -c shared_buffers=32MB")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed and cannot be here (the message says why and what to run)."""


class PostgresError(RuntimeError):
    """PostgreSQL is installed but initdb / pg_ctl / the set-up failed: a real failure, never a skip."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    db: str
    root: Path  # temp folder: data/, the socket, the log

    def dagster_env(self) -> dict[str, str]:
        """The environment deploy/dagster.postgres.yaml reads its credentials from."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": self.db}

    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} password={self.password} dbname={self.db}"


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL bin folder holding initdb and pg_ctl (or both on PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    return None


_install_tried: list[bool] = []  # install.sh runs at most once per process


def ensure_binaries() -> Path:
    """PostgreSQL's bin folder; runs install.sh once when it is missing."""
    bindir = find_bindir()
    if bindir is None and _install_tried:
        raise PostgresUnavailable(f"PostgreSQL (initdb, pg_ctl) is not installed; {INSTALL_SCRIPT} already failed "
                                  f"to install it in this process")
    if bindir is None:
        _install_tried.append(True)
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True)
        bindir = find_bindir()
        if bindir is None:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise PostgresUnavailable(f"PostgreSQL (initdb, pg_ctl) is not installed and {INSTALL_SCRIPT} could not "
                                      f"install it (exit {proc.returncode}: {' / '.join(tail)}); run that script "
                                      f"as root, or apt-get install postgresql")
    return bindir


def _as_owner(args: list[str]) -> list[str]:
    """`args` as the cluster's owner: the `postgres` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", SERVER_USER, "--", *args]


def _check_owner() -> None:
    if os.geteuid() != 0:
        return
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root, initdb must run as another user, and `runuser` is missing "
                                  "(util-linux)")
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root, and there is no `{SERVER_USER}` user to own the cluster; "
                                  f"{INSTALL_SCRIPT} (Debian's postgresql package) creates it") from None


def _run(args: list[str], what: str, log: Path) -> None:
    # output to a file, never a pipe: the postmaster pg_ctl leaves running would inherit the pipe
    size = log.stat().st_size
    with open(log, "ab") as out:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    text = log.read_bytes()[size:].decode(errors="replace")
    if proc.returncode != 0:
        raise PostgresError(f"{what} failed (exit {proc.returncode}): {text.strip()[-1500:]}")


def start(base_dir: str | None = None, port: int | None = None) -> PostgresServer:
    """initdb a new cluster in a temp folder, start it on 127.0.0.1:<port>, create the role and db."""
    bindir = ensure_binaries()
    _check_owner()
    root = Path(tempfile.mkdtemp(prefix="alvh-pg-", dir=base_dir))
    try:
        owner = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else None
        if owner:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        superuser_password, password = secrets.token_hex(16), secrets.token_hex(16)
        pwfile = root / "pwfile"
        pwfile.write_text(superuser_password + "\n")
        if owner:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        log = root / "postgres.log"
        log.touch()
        if owner:
            os.chown(log, owner.pw_uid, owner.pw_gid)
        # password authentication everywhere (scram), so the credentials Dagster is given are really used
        _run(_as_owner([str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", f"--pwfile={pwfile}",
                        "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"]), "initdb", log)
        pwfile.unlink()
        (root / BINDIR_FILE).write_text(f"{bindir}\n")
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            chosen = port or free_port()
            options = f"-p {chosen} -k {root} -c listen_addresses=127.0.0.1 {THROWAWAY_SETTINGS}"
            try:
                _run(_as_owner([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(log), "-o", options,
                                "-w", "-t", "60", "start"]), f"pg_ctl start (port {chosen}; log {log})", log)
                break
            except PostgresError:
                if port or attempt == 2 or "could not bind" not in log.read_text(errors="replace"):
                    raise
        server = PostgresServer("127.0.0.1", chosen, DB_USER, password, DB_NAME, root)
        _create_database(server, superuser_password)
        return server
    except BaseException:
        stop(root)
        raise


def _create_database(server: PostgresServer, superuser_password: str) -> None:
    import psycopg2  # the driver dagster-postgres uses; imported here so `stop` works without it

    deadline = time.time() + 30
    while True:  # pg_ctl -w returns when the server accepts connections; a loaded machine may lag
        try:
            conn = psycopg2.connect(host=server.host, port=server.port, user="postgres",
                                    password=superuser_password, dbname="postgres", connect_timeout=5)
            break
        except psycopg2.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {server.user} LOGIN PASSWORD %s", (server.password,))
            cur.execute(f"CREATE DATABASE {server.db} OWNER {server.user}")
    finally:
        conn.close()


def stop(root: str | Path) -> None:
    """Stop the cluster in `root` (fast shutdown: open sessions are ended) and delete the folder."""
    root = Path(root)
    data = root / "data"
    recorded = root / BINDIR_FILE
    bindir = Path(recorded.read_text().strip()) if recorded.exists() else find_bindir()
    if (data / "postmaster.pid").exists() and bindir is not None:
        proc = subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30",
                                         "stop"]), stdin=subprocess.DEVNULL, capture_output=True)
        if proc.returncode != 0 and (data / "postmaster.pid").exists():
            _kill_postmaster(data)
    shutil.rmtree(root, ignore_errors=True)


def _kill_postmaster(data: Path) -> None:
    """Last resort when pg_ctl cannot stop it: SIGKILL the postmaster this cluster's pid file names."""
    try:
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


@contextmanager
def postgres_server(base_dir: str | None = None) -> Iterator[PostgresServer]:
    """A running throwaway server; stopped and deleted on exit, whatever happened inside."""
    server = start(base_dir)
    try:
        yield server
    finally:
        stop(server.root)


def main(argv: list[str] | None = None) -> int:
    return start_stop_cli(argv, __doc__, start, stop, PostgresServer.dagster_env, (PostgresUnavailable, PostgresError))


if __name__ == "__main__":
    sys.exit(main())
