"""Issue 10, the object-store lake: `ALVH_LAKE_URI=s3://bucket/prefix` through the same `Lake` class,
on a real S3-compatible server (moto in server mode on 127.0.0.1, `scripts/servers/s3.py`), with the
endpoint and credentials in the standard AWS variables.

- The Lake on S3: partitions (the same bytes a local lake writes, one PUT each), digests, JSON,
  documents, unpartitioned tables, quarantine copies, the partition listing, range reads; a write
  that fails (mid-serialization, or refused by the store) leaves no object behind.
- Slow: ingest and features for 3 sessions through Dagster with the lake on S3 and, for reference,
  on a local folder. Every object the runs put on S3 is byte-identical to the local file, the
  results read back with pyarrow.dataset (no project code) cover the sessions, and the server's
  request log shows only single PUTs: no multipart upload, no copy or delete (no rename), no temp
  object left. The features' look-back (273 sessions of 7 validated tables) is written once
  locally and uploaded as is: materializing it through ingest would take minutes.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import server_scripts

from alvh_pipeline.cli import print_verdict
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.feature_sets import FEATURE_SETS, history_start
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.definitions import defs
from alvh_pipeline.lake import HISTORY, STAGING, Lake, LakeWriteError
from alvh_pipeline.resources import LakeResource, build_resources, lake_from_env
from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES
from alvh_pipeline.sources import synthetic
from alvh_pipeline.sources.resource import MarketSource

warnings.filterwarnings("ignore", category=dg.BetaWarning)
ROOT = Path(__file__).resolve().parents[1]
PREFIX = "team/lake"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours the request lines of 4xx / 5xx answers
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


servers = server_scripts.load("s3")


@pytest.fixture(scope="module")
def s3():
    try:
        server = servers.start()
    except servers.S3Unavailable as exc:
        pytest.skip(str(exc))
    yield server
    servers.stop(server.root)


@pytest.fixture
def client(s3, monkeypatch):
    """boto3 on the server, with the server's AWS_* settings in the environment (and no others)."""
    import boto3

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    for var, value in s3.aws_env().items():
        monkeypatch.setenv(var, value)
    return boto3.client("s3")


@pytest.fixture
def bucket(client) -> str:
    name = f"alvh-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_lake(bucket, monkeypatch) -> Lake:
    """The lake the CLI would use: root and endpoint from the environment."""
    monkeypatch.setenv("ALVH_LAKE_URI", f"s3://{bucket}/{PREFIX}")
    return lake_from_env()


def _keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _body(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _log_mark(s3) -> int:
    return s3.log.stat().st_size


def _requests(s3, mark: int) -> list[tuple[str, str, str]]:
    """(method, object path, query) of every request the server logged after `mark`."""
    out = []
    with open(s3.log, "rb") as fh:
        fh.seek(mark)
        for line in ANSI.sub("", fh.read().decode(errors="replace")).splitlines():
            if '"' not in line:
                continue
            method, target = line.split('"')[1].split(" ")[:2]
            url = urlsplit(target)
            out.append((method, unquote(url.path), url.query))
    return out


def _frame(day: str = "2024-03-01") -> pd.DataFrame:
    return synthetic.generate("vix_futures", [day])


def test_the_lake_uri_names_s3_and_its_endpoint_from_the_environment(monkeypatch):
    monkeypatch.setenv("ALVH_LAKE_URI", "s3://bucket/some/prefix/")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    lake = lake_from_env()
    assert (lake.on_s3, lake.s3_endpoint, lake.uri) == (True, "http://127.0.0.1:9", "s3://bucket/some/prefix")
    assert lake.partition_path("raw", "rates", "2024-03-04") == \
        "s3://bucket/some/prefix/raw/rates/date=2024-03-04/part-0.parquet"
    resource = build_resources()["lake"]
    assert resource.s3_endpoint.env_var_name == "AWS_ENDPOINT_URL"  # an EnvVar: resolved when a run launches
    with pytest.raises(ValueError, match="name a bucket"):
        Lake.from_uri("s3://")


def test_a_partition_is_one_put_of_the_bytes_a_local_lake_writes(s3, client, bucket, s3_lake, tmp_path):
    schema = CONTRACTS["vix_futures"].schema
    mark = _log_mark(s3)
    where = s3_lake.write_partition("validated", "vix_futures", "2024-03-01", _frame(), schema)
    key = f"{PREFIX}/validated/vix_futures/date=2024-03-01/part-0.parquet"
    assert where == f"s3://{bucket}/{key}"
    assert _requests(s3, mark) == [("PUT", f"/{bucket}/{key}", "")]  # no temp object, no multipart, no rename
    assert _keys(client, bucket) == [key]
    local = Lake(str(tmp_path / "local"))
    body = _body(client, bucket, key)
    assert body == local.write_partition("validated", "vix_futures", "2024-03-01", _frame(), schema).read_bytes()

    digest, rows = s3_lake.read_partition_with_digest("validated", "vix_futures", "2024-03-01")
    assert digest == hashlib.sha256(body).hexdigest()
    assert s3_lake.read_partition_bytes("validated", "vix_futures", "2024-03-01") == (digest, body)
    pd.testing.assert_frame_equal(rows, local.read_partition("validated", "vix_futures", "2024-03-01"))
    settle = s3_lake.read_partition("validated", "vix_futures", "2024-03-01", columns=["settle"])
    assert list(settle.columns) == ["settle"] and settle["settle"].tolist() == _frame()["settle"].tolist()
    assert s3_lake.exists("validated", "vix_futures", "2024-03-01")
    assert not s3_lake.exists("validated", "vix_futures", "2024-03-04")
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/{PREFIX}/validated/vix_futures/date=2024-03-04"):
        s3_lake.read_partition("validated", "vix_futures", "2024-03-04")
    with pytest.raises(FileNotFoundError, match="no partition 2024-03-04"):
        s3_lake.read_partition_with_digest("validated", "vix_futures", "2024-03-04")


def test_documents_tables_and_quarantine_copies(client, bucket, s3_lake, capsys):
    assert s3_lake.read_json("_verdicts", "rates", "date=2024-03-04.json") is None
    verdict = {"table": "rates", "passed": True, "raw_sha256": "ab" * 32}
    s3_lake.write_json("_verdicts", "rates", "date=2024-03-04.json", verdict)
    assert s3_lake.read_json("_verdicts", "rates", "date=2024-03-04.json") == verdict
    assert _body(client, bucket, f"{PREFIX}/_verdicts/rates/date=2024-03-04.json") == \
        json.dumps(verdict, sort_keys=True).encode()

    where = s3_lake.write_document("attribution", "verdict", "verdict.md", b"# Verdict\nnot crushed\n")
    assert where == f"s3://{bucket}/{PREFIX}/attribution/verdict/verdict.md"
    assert s3_lake.read_document("attribution", "verdict", "verdict.md").decode() == "# Verdict\nnot crushed\n"
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/{PREFIX}/attribution/tearsheet/tearsheet.html"):
        s3_lake.read_document("attribution", "tearsheet", "tearsheet.html")
    print_verdict(s3_lake)  # the CLI's last words, read through the lake
    assert capsys.readouterr().out.endswith("# Verdict\nnot crushed\n\n")

    table = pd.DataFrame({"mode": ["steward", "promoter"], "sharpe": [0.8, 1.1], "margin_calls": [0, 2]})
    s3_lake.write_table("attribution", "performance", table)
    pd.testing.assert_frame_equal(s3_lake.read_table("attribution", "performance"), table)
    with pytest.raises(FileNotFoundError, match="attribution/stress: no table at s3://"):
        s3_lake.read_table("attribution", "stress")

    raw = s3_lake.write_partition("raw", "vix_futures", "2024-03-01", _frame())
    copy = s3_lake.copy_partition("raw", "vix_futures", "2024-03-01", "quarantine", "unreadable-part-0.parquet")
    assert copy == f"s3://{bucket}/{PREFIX}/quarantine/vix_futures/date=2024-03-01/unreadable-part-0.parquet"
    assert _body(client, bucket, copy[len(f"s3://{bucket}/"):]) == _body(client, bucket, raw[len(f"s3://{bucket}/"):])
    assert s3_lake.copy_partition("raw", "vix_futures", "2024-03-04", "quarantine", "x.parquet") is None
    s3_lake.write_partition_text("quarantine", "vix_futures", "2024-03-01", "reason.txt", "truncated\n")
    assert _body(client, bucket, f"{PREFIX}/quarantine/vix_futures/date=2024-03-01/reason.txt") == b"truncated\n"
    assert s3_lake.partitions("quarantine", "vix_futures") == []  # documents beside, no partition file


def test_partition_listing_and_range_reads(s3, client, bucket, s3_lake):
    schema = CONTRACTS["vix_futures"].schema
    days = ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06"]
    frame = synthetic.generate("vix_futures", days)
    written = s3_lake.write_range("validated", "vix_futures", frame, days, schema)
    assert list(written) == days
    # objects that are not partitions: a note in a day's folder, one beside the days, a day without part-0
    strays = [f"{PREFIX}/validated/vix_futures/{k}" for k in ("date=2024-03-07/notes.txt", "README",
                                                              "date=2024-03-08/part-1.parquet")]
    for key in strays:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert s3_lake.partitions("validated", "vix_futures") == days
    for key in strays:  # a range read refuses files that are not Parquet (as on a local lake)
        client.delete_object(Bucket=bucket, Key=key)
    assert s3_lake.partitions("validated", "rates") == []
    assert s3_lake.partitions("validated", "vix_fut") == []  # a key prefix of a table is not the table

    got = s3_lake.read_range("validated", "vix_futures", "2024-03-04", "2024-03-05", schema=schema)
    assert sorted(pd.to_datetime(got["date"]).dt.strftime("%Y-%m-%d").unique()) == days[1:3]
    assert len(got) == 16
    with pytest.raises(FileNotFoundError, match=f"no data under s3://{bucket}/{PREFIX}/validated/rates"):
        s3_lake.read_range("validated", "rates", "2024-03-04", "2024-03-05")

    # readable without the project: pyarrow's own S3 client on the hive layout
    s3fs = pafs.S3FileSystem(endpoint_override=s3.endpoint)
    dataset = ds.dataset(f"{bucket}/{PREFIX}/validated/vix_futures", filesystem=s3fs, format="parquet",
                         partitioning=None, exclude_invalid_files=True)
    front = dataset.to_table(filter=(ds.field("month_index") == 1)).to_pandas()
    assert len(front) == 4
    assert front.sort_values("date")["settle"].tolist() == frame[frame["month_index"] == 1]["settle"].tolist()


def test_a_failed_write_leaves_no_object_and_names_it(s3, client, bucket, s3_lake, monkeypatch):
    schema = CONTRACTS["vix_futures"].schema
    key = f"{PREFIX}/validated/vix_futures/date=2024-03-01/part-0.parquet"
    s3_lake.write_partition("validated", "vix_futures", "2024-03-01", _frame(), schema)
    before = _body(client, bucket, key)
    real_write = pq.write_table

    def crash(table, where, **kw):
        real_write(table.slice(0, 2), where, **kw)  # half a file is serialized...
        raise OSError("simulated crash")  # ...then the writer fails

    monkeypatch.setattr(pq, "write_table", crash)
    mark = _log_mark(s3)
    with pytest.raises(LakeWriteError, match=f"cannot write s3://{bucket}/{key}: simulated crash"):
        s3_lake.write_partition("validated", "vix_futures", "2024-03-01", _frame("2024-03-04"), schema)
    with pytest.raises(LakeWriteError, match="date=2024-03-04/part-0.parquet: simulated crash"):
        s3_lake.write_partition("validated", "vix_futures", "2024-03-04", _frame("2024-03-04"), schema)
    assert _requests(s3, mark) == []  # nothing reached the store
    assert _keys(client, bucket) == [key] and _body(client, bucket, key) == before
    monkeypatch.setattr(pq, "write_table", real_write)

    # the store refuses (no such bucket): the error names the object, nothing is left anywhere
    missing = f"alvh-missing-{uuid.uuid4().hex[:8]}"
    gone = Lake.from_uri(f"s3://{missing}/lake", s3.endpoint)
    with pytest.raises(LakeWriteError, match=f"cannot write s3://{missing}/lake/_verdicts/rates/date=2024-03-04.json"
                                             ": .*NO_SUCH_BUCKET"):
        gone.write_json("_verdicts", "rates", "date=2024-03-04.json", {"passed": True})
    assert missing not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# ---- ingest and features through Dagster -------------------------------------------------------
S = all_sessions()
DAYS = S[(S >= "2024-03-04") & (S <= "2024-03-06")]
N_EQUITIES = 40  # a smaller universe than the default 100: the same code paths, a faster pair screen
LOOKBACK_TABLES = sorted({t for fs in FEATURE_SETS.values() if fs.lookback for t in fs.tables})


def _run(job: str, resources: dict) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        run_config=QUIET, raise_on_error=False, resources=resources,
        tags={"dagster/asset_partition_range_start": DAYS[0].strftime("%Y-%m-%d"),
              "dagster/asset_partition_range_end": DAYS[-1].strftime("%Y-%m-%d")})


def _assert_passed(results: list[dg.ExecuteInProcessResult], checks: int) -> None:
    assert all(r.success for r in results)
    evaluations = [c for r in results for c in r.get_asset_check_evaluations()]
    assert len(evaluations) == checks and all(c.passed for c in evaluations), \
        [c.description for c in evaluations if not c.passed]


def _files(lake: Lake) -> set[str]:
    """The lake's files, without what only a local lake derives (the history cache of its reads,
    its staging folders): an S3 lake has neither."""
    local_only = (HISTORY, STAGING)
    return {str(p.relative_to(lake.root)) for p in Path(lake.root).rglob("*")
            if p.is_file() and p.relative_to(lake.root).parts[0] not in local_only}


def _upload(s3, bucket: str, lake: Lake, files: set[str]) -> None:
    """`files` of the local `lake` to the same keys under PREFIX, one PUT each, 8 at a time
    (pyarrow's copy_files would also create folder marker objects)."""
    fs = pafs.S3FileSystem(endpoint_override=s3.endpoint, allow_delayed_open=True)

    def put(rel: str) -> None:
        with fs.open_output_stream(f"{bucket}/{PREFIX}/{rel}") as out:
            out.write((Path(lake.root) / rel).read_bytes())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, sorted(files)))


@pytest.mark.slow
def test_ingest_and_features_through_dagster_on_s3(s3, client, bucket, monkeypatch, tmp_path):
    history = S[(S >= history_start(DAYS[0])) & (S < DAYS[0])]
    cfg = SimConfig(n_equities=N_EQUITIES)
    local = Lake(str(tmp_path / "local"))
    for t in LOOKBACK_TABLES:  # the look-back the feature sets read, as ingest would have published it
        frame = synthetic.generate(t, history, cfg).sort_values(list(CONTRACTS[t].keys))
        local.write_range("validated", t, frame, history, CONTRACTS[t].schema)
    seed = _files(local)
    _upload(s3, bucket, local, seed)  # the S3 lake starts from the same bytes
    assert len(_keys(client, bucket, PREFIX)) == len(seed) == len(LOOKBACK_TABLES) * len(history)

    # on S3: the lake and the source from the environment, as `make run` / the UI would read them
    monkeypatch.setenv("ALVH_LAKE_URI", f"s3://{bucket}/{PREFIX}")
    monkeypatch.setenv("ALVH_N_EQUITIES", str(N_EQUITIES))
    mark = _log_mark(s3)
    on_s3 = [_run(job, build_resources()) for job in ("ingest", "features")]
    requests = _requests(s3, mark)
    _assert_passed(on_s3, len(RAW_TABLES) + len(FEATURE_SETS))
    reference = [_run(job, {"lake": LakeResource(root=local.root), "source": MarketSource(n_equities=N_EQUITIES)})
                 for job in ("ingest", "features")]
    _assert_passed(reference, len(RAW_TABLES) + len(FEATURE_SETS))

    paths = {tuple(e.asset_key.path): e.event_specific_data.materialization.metadata["path"].value
             for r in on_s3 for e in r.get_asset_materialization_events()}
    assert paths[("features", "pairs")] == f"s3://{bucket}/{PREFIX}/features/pairs"  # what the UI shows
    assert paths[("validated", "rates")] == f"s3://{bucket}/{PREFIX}/validated/rates"

    # every object the runs wrote is the file the same runs wrote locally, byte for byte
    written = _files(local) - seed
    on_store = {k[len(PREFIX) + 1:] for k in _keys(client, bucket, PREFIX)} - seed
    assert on_store == written
    assert {w.split("/")[0] for w in written} == {"raw", "_verdicts", "validated", "features"}
    for rel in sorted(written):
        assert _body(client, bucket, f"{PREFIX}/{rel}") == (Path(local.root) / rel).read_bytes(), rel

    # read back without the project: pyarrow.dataset on S3
    s3fs = pafs.S3FileSystem(endpoint_override=s3.endpoint)
    want_days = {d.date() for d in DAYS}
    for name in FEATURE_SETS:
        got = ds.dataset(f"{bucket}/{PREFIX}/features/{name}", filesystem=s3fs, format="parquet").to_table()
        assert set(got.column("date").to_pylist()) == want_days, name
    vix = ds.dataset(f"{bucket}/{PREFIX}/validated/vix_futures", filesystem=s3fs, format="parquet").to_table(
        filter=ds.field("date") >= DAYS[0].date()).to_pandas().sort_values(["date", "month_index"])
    expected = synthetic.generate("vix_futures", DAYS, cfg).sort_values(["date", "month_index"])
    assert vix["settle"].tolist() == expected["settle"].tolist()

    # all-or-nothing writes: one PUT per object, no multipart upload, no copy or delete, no temp object
    puts = Counter(path for method, path, _ in requests if method == "PUT")
    assert {path[len(f"/{bucket}/{PREFIX}/"):] for path in puts} == written
    assert set(puts.values()) == {1}
    assert {method for method, _, _ in requests} <= {"GET", "HEAD", "PUT"}
    assert not [q for method, _, q in requests if method == "PUT" and q]  # no ?uploads / ?partNumber
    assert not [k for k in _keys(client, bucket) if Path(k).name.startswith(".")]
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
