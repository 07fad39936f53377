"""A throwaway S3-compatible server on 127.0.0.1 for the object-store lake tests (DESIGN §7):
`moto` in server mode (`moto_server`, from this venv's bin; a test dependency), in memory, on a free
port, its request log in a temp folder. Any access key is accepted; buckets are made by the caller.

    from s3 import s3_server                        # scripts/servers on sys.path (or load by path)
    with s3_server() as s3:                         # s3.endpoint, s3.port, s3.log
        env = {**os.environ, **s3.aws_env()}        # AWS_ENDPOINT_URL, keys, region for boto3 / the lake

    python scripts/servers/s3.py start              # prints `export AWS_...` lines and the folder
    python scripts/servers/s3.py stop <dir>

A missing `moto_server` is `S3Unavailable` (the tests skip with it); a server that does not answer
or exits early is an `S3Error`.
"""

from __future__ import annotations

import http.client
import shutil
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
from _common import HOST, free_port, start_stop_cli, stop_group  # noqa: E402

BIN = Path(sys.executable).parent  # the venv's moto_server
PID_FILE = "moto.pid"  # in the server's folder: what `stop` needs when run from another process
LOG_FILE = "moto.log"
# moto accepts any credentials; these only have to be present so no client looks further
ACCESS_KEY, SECRET_KEY, REGION = "alvh-test", "alvh-test-secret", "us-east-1"


class S3Unavailable(RuntimeError):
    """moto_server is not installed in this environment (the message says what to install)."""


class S3Error(RuntimeError):
    """moto_server is installed but did not start or answer: a real failure, never a skip."""


@dataclass(frozen=True)
class S3Server:
    port: int
    pid: int
    root: Path  # temp folder: the pid file and the request log

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        """moto's request log: one line per HTTP request (method, path and query, status)."""
        return self.root / LOG_FILE

    def aws_env(self) -> dict[str, str]:
        """The standard AWS variables boto3 reads, and the lake (credentials and region through
        pyarrow's S3 client; the endpoint through `resources.LakeResource.s3_endpoint`)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true"}  # never probe instance metadata for a setting


def moto_binary() -> Path:
    path = BIN / "moto_server"
    if not path.exists():
        raise S3Unavailable(f"{path} is missing: install the test dependencies (pip install 'moto[server]')")
    return path


def _answers(port: int) -> bool:
    """True once the server answers an S3 ListBuckets (GET /) on `port`."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start(base_dir: str | None = None, port: int | None = None, timeout: float = 60) -> S3Server:
    """moto_server on 127.0.0.1:<port> in its own session (so `stop` ends it and nothing else),
    returned once it answers."""
    binary = moto_binary()
    root = Path(tempfile.mkdtemp(prefix="alvh-s3-", dir=base_dir))
    port = port or free_port()
    # the log goes to a file, never a pipe: nobody drains a pipe and a full one would stall the server
    with open(root / LOG_FILE, "ab") as log:
        proc = subprocess.Popen([str(binary), "-H", HOST, "-p", str(port)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    (root / PID_FILE).write_text(f"{proc.pid}\n")
    server = S3Server(port, proc.pid, root)
    deadline = time.time() + timeout
    while not _answers(port):
        if proc.poll() is not None or time.time() > deadline:
            text = server.log.read_text(errors="replace").strip()[-1500:]
            stop(root)
            why = f"exited with code {proc.returncode}" if proc.returncode is not None else f"no answer in {timeout}s"
            raise S3Error(f"moto_server on port {port}: {why}: {text}")
        time.sleep(0.2)
    return server


def stop(root: str | Path, timeout: float = 15) -> None:
    """TERM the server started in `root` (its own process group), KILL it if it lingers, delete `root`."""
    root = Path(root)
    try:
        stop_group(int((root / PID_FILE).read_text().strip()), timeout)
    except (OSError, ValueError):
        pass
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def s3_server(base_dir: str | None = None) -> Iterator[S3Server]:
    """A running throwaway server; stopped and its folder deleted on exit, whatever happened inside."""
    server = start(base_dir)
    try:
        yield server
    finally:
        stop(server.root)


def main(argv: list[str] | None = None) -> int:
    return start_stop_cli(argv, __doc__, start, stop, S3Server.aws_env, (S3Unavailable, S3Error),
                          after="# make a bucket (aws s3 mb s3://lake, or boto3), then ALVH_LAKE_URI=s3://lake/<prefix>")


if __name__ == "__main__":
    sys.exit(main())
