from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from alvh_pipeline import lake as lake_module
from alvh_pipeline.lake import Lake
from alvh_pipeline.processes import this_host
from alvh_pipeline.schemas import CONTRACTS
from alvh_pipeline.sources import synthetic


def _frame(date="2024-03-01"):
    return synthetic.generate("vix_futures", [date])


def _staged(lake: Lake) -> list[Path]:
    """Temp files anywhere in the lake: the staging folder's (`*.tmp`) or staged in place (`.tmp-*`)."""
    return [p for p in Path(lake.root).rglob("*") if p.is_file() and (p.suffix == ".tmp" or p.name.startswith(".tmp-"))]


def test_rewrite_is_byte_identical(lake):
    schema = CONTRACTS["vix_futures"].schema
    p = lake.write_partition("validated", "vix_futures", "2024-03-01", _frame(), schema)
    first = p.read_bytes()
    lake.write_partition("validated", "vix_futures", "2024-03-01", _frame(), schema)
    assert p.read_bytes() == first


def test_crash_mid_write_keeps_previous_file_and_leaves_no_temp(lake, monkeypatch):
    schema = CONTRACTS["vix_futures"].schema
    p = lake.write_partition("validated", "vix_futures", "2024-03-01", _frame(), schema)
    before = p.read_bytes()
    real_write = pq.write_table

    def crash(table, where, **kw):
        real_write(table.slice(0, 2), where, **kw)  # half a file reaches the disk...
        raise OSError("simulated crash")  # ...then the process dies

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="simulated crash"):
        lake.write_partition("validated", "vix_futures", "2024-03-01", _frame("2024-03-04"), schema)
    assert p.read_bytes() == before
    assert [f.name for f in p.parent.iterdir()] == ["part-0.parquet"]


def test_read_range_is_one_scan_with_partition_filter_and_duckdb_reads_the_lake(lake):
    schema = CONTRACTS["vix_futures"].schema
    dates = ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06"]
    for d in dates:
        lake.write_partition("validated", "vix_futures", d, _frame(d), schema)
    got = lake.read_range("validated", "vix_futures", "2024-03-04", "2024-03-05", schema=schema)
    assert sorted(pd.to_datetime(got["date"]).dt.strftime("%Y-%m-%d").unique()) == dates[1:3]
    assert len(got) == 16
    root = lake.table_dir("validated", "vix_futures")
    n = duckdb.sql(f"select count(*) from '{root}/*/*.parquet'").fetchall()[0][0]
    assert n == 32
    front = duckdb.sql(
        f"select settle from read_parquet('{root}/*/*.parquet', hive_partitioning=false) "
        f"where date = DATE '2024-03-04' and month_index = 1").fetchall()[0][0]
    assert front == pytest.approx(_frame("2024-03-04").iloc[0]["settle"])


def test_lake_root_from_env(monkeypatch, tmp_path):
    from alvh_pipeline.resources import build_resources, lake_root

    monkeypatch.setenv("ALVH_LAKE_URI", f"file://{tmp_path}/x")
    assert Lake.from_uri(lake_root()).root == f"{tmp_path}/x"
    resource = build_resources()["lake"]
    assert resource.root.env_var_name == "ALVH_LAKE_URI"  # an EnvVar: resolved when a run launches


@pytest.mark.parametrize("uri", ["gs://b/p", "abfs://container/lake", "http://host/lake", "s3a://bucket/p"])
def test_unknown_lake_schemes_are_refused(uri):
    with pytest.raises(ValueError, match="not supported"):
        Lake.from_uri(uri)


def test_failed_atomic_write_leaves_no_temp_file_and_names_the_path(lake, monkeypatch):
    import errno

    from alvh_pipeline.lake import LakeWriteError

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(LakeWriteError, match="_verdicts/rates/date=2024-03-04.json"):
        lake.write_json("_verdicts", "rates", "date=2024-03-04.json", {"passed": True})
    with pytest.raises(LakeWriteError, match="No space left"):
        lake.write_partition("raw", "rates", "2024-03-04", pd.DataFrame({"date": [1], "x": [1.0]}))
    assert _staged(lake) == []


def test_a_batch_publishes_its_files_together_with_one_sync(lake, monkeypatch):
    frame = pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]), "x": [1.0]})
    lake.write_partition("validated", "t", "2024-01-02", frame)
    old = lake.partition_path("validated", "t", "2024-01-02").read_bytes()
    syncs, fsyncs = [], []
    monkeypatch.setattr("alvh_pipeline.lake.os.sync", lambda: syncs.append(1))
    monkeypatch.setattr("alvh_pipeline.lake.os.fsync", lambda fd: fsyncs.append(fd))
    with lake.batch():
        lake.write_partition("validated", "t", "2024-01-02", frame.assign(x=2.0))
        with lake.batch():  # a nested batch joins the outer one, as does another Lake object of the root
            Lake.from_uri(lake.root).write_partition("validated", "t", "2024-01-03",
                                                     frame.assign(date=pd.Timestamp("2024-01-03")))
        # nothing is published before the batch ends
        assert lake.partition_path("validated", "t", "2024-01-02").read_bytes() == old
        assert not lake.exists("validated", "t", "2024-01-03")
    assert syncs == [1] and fsyncs == []  # one sync for the batch, no fsync per file
    assert lake.read_partition("validated", "t", "2024-01-02")["x"].tolist() == [2.0]
    assert lake.exists("validated", "t", "2024-01-03")
    assert _staged(lake) == []


def test_an_error_inside_a_batch_publishes_nothing_and_leaves_no_temp(lake):
    frame = pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]), "x": [1.0]})
    lake.write_partition("validated", "t", "2024-01-02", frame)
    with pytest.raises(RuntimeError, match="mid-range"):
        with lake.batch():
            lake.write_partition("validated", "t", "2024-01-02", frame.assign(x=9.0))
            lake.write_partition("validated", "t", "2024-01-03", frame.assign(date=pd.Timestamp("2024-01-03")))
            raise RuntimeError("mid-range")
    assert lake.read_partition("validated", "t", "2024-01-02")["x"].tolist() == [1.0]
    assert not lake.exists("validated", "t", "2024-01-03")
    assert _staged(lake) == []
    lake.write_partition("validated", "t", "2024-01-04", frame.assign(date=pd.Timestamp("2024-01-04")))
    assert lake.exists("validated", "t", "2024-01-04")  # the batch is over: writes publish at once again


def _per_day_bytes(lake_dir: Path, frame: pd.DataFrame, days, schema) -> dict[str, bytes]:
    """Each day written from its own rows (what write_range did before it converted once)."""
    own = Lake(str(lake_dir))
    key = pd.to_datetime(frame["date"]).dt.normalize()
    for d in days:
        own.write_partition("features", "t", d, frame[key == pd.Timestamp(d)], schema)
    return {d: own.partition_path("features", "t", d).read_bytes() for d in days}


@pytest.mark.parametrize("case", ["typed", "typed_in_day_order", "text_with_a_day_of_nulls", "mixed_objects", "lists",
                                  "schema"])
def test_write_range_writes_each_day_as_its_own_conversion_would(tmp_path, case):
    import datetime as dt

    import pyarrow as pa

    days = ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06"]  # 03-06: no rows (an empty file)
    dates = [dt.date(2024, 3, 4), dt.date(2024, 3, 1), dt.date(2024, 3, 5), dt.date(2024, 3, 4), dt.date(2024, 3, 1)]
    frame = pd.DataFrame({"date": dates, "x": [1.5, 2.0, float("nan"), 4.0, 5.0], "n": [1, 2, 3, 4, 5]})
    schema = None
    if case == "typed_in_day_order":  # the common case (rows sorted by keys from date): sliced without a copy
        frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
    elif case == "text_with_a_day_of_nulls":
        frame["symbol"] = ["a", None, None, "d", "e"]  # 2024-03-05: only a null (own type: null)
    elif case == "mixed_objects":
        frame["v"] = [1, "b", 3, 4, "e"]  # ints some days, text others: no one Arrow type over the range
    elif case == "lists":
        frame["v"] = [[1, 2], [3.5], [4], [5], [6]]  # inferred per day: int64 on some, double on others
    elif case == "schema":
        frame["symbol"] = ["a", None, None, "d", "e"]
        schema = pa.schema([("date", pa.date32()), ("x", pa.float64()), ("n", pa.int32()), ("symbol", pa.string())])
    ranged = Lake(str(tmp_path / "ranged"))
    ranged.write_range("features", "t", frame, days, schema)
    expected = _per_day_bytes(tmp_path / "own", frame, days, schema)
    assert {d: ranged.partition_path("features", "t", d).read_bytes() for d in days} == expected
    back = pd.concat([pq.read_table(ranged.partition_path("features", "t", d)).to_pandas() for d in days])
    assert len(back) == len(frame) and list(back["n"]) == [2, 5, 1, 4, 3]  # each day's rows in frame order
    assert list(back.columns) == list(frame.columns)


# a writer that stages a batch of partitions and is killed before it renames them (kill -9 mid-run)
KILLED_WRITER = """
import sys, time
from pathlib import Path
import pandas as pd
from alvh_pipeline.lake import Lake
lake = Lake(sys.argv[1])
with lake.batch():
    for day in pd.bdate_range("2024-01-08", periods=5):
        lake.write_partition("raw", "t", day, pd.DataFrame({"date": [day] * 100, "x": range(100)}))
    Path(sys.argv[2]).touch()
    time.sleep(120)
"""


def test_a_writer_killed_mid_batch_leaves_nothing_a_table_glob_reads(lake, tmp_path):
    """Issue 21.1: DuckDB's glob of a table (the README's query) reads exactly the published rows
    after a writer is killed holding staged files, and the next run's clean-up removes them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    for day in pd.bdate_range("2024-01-01", periods=5):  # the reference: 5 days x 3 rows
        lake.write_partition("raw", "t", day, pd.DataFrame({"date": [day] * 3, "x": [1.0, 2.0, 3.0]}))
    ready = tmp_path / "staged"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, lake.root, str(ready)])
    try:
        deadline = time.time() + 60
        while not ready.exists():
            assert writer.poll() is None and time.time() < deadline, "the writer did not stage its batch"
            time.sleep(0.05)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    assert len(_staged(lake)) == 5  # what the killed writer left
    glob = f"{lake.root}/raw/t/*/*.parquet"
    assert duckdb.sql(f"select count(*) from '{glob}'").fetchall() == [(15,)]
    assert duckdb.sql(f"select count(*) from '{lake.root}/**/*.parquet'").fetchall() == [(15,)]

    removed = lake.clean_staging()
    assert len(removed) == 1 and Path(removed[0]).name.startswith(f"{this_host()}-{writer.pid}-")
    assert _staged(lake) == []
    assert lake.clean_staging() == []


def test_clean_staging_keeps_live_writers_and_removes_temp_files_staged_in_place_once(lake):
    """A live process's staged files stay (its batch publishes them); temp files an older version
    staged beside the partitions (`.tmp-*.parquet`) are removed by the first clean-up."""
    frame = pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]), "x": [1.0]})
    lake.write_partition("raw", "t", "2024-01-02", frame)
    legacy = lake.partition_path("raw", "t", "2024-01-02").parent / ".tmp-abc123.parquet"
    legacy.write_bytes(b"half a file")
    with lake.batch():
        lake.write_partition("raw", "t", "2024-01-03", frame.assign(date=pd.Timestamp("2024-01-03")))
        assert lake.clean_staging() == [str(legacy)]  # this process is alive: its staged file stays
        assert [p.suffix for p in _staged(lake)] == [".tmp"]
    assert lake.exists("raw", "t", "2024-01-03") and _staged(lake) == []
    legacy.write_bytes(b"again")  # searched once per lake: the staging folder remembers it
    assert lake.clean_staging() == []


def test_history_cache_reads_what_a_scan_reads_and_follows_every_rewrite(lake):
    """`read_range(reuse=True)` equals the plain scan: built cold, warm, after a new day, after an
    older day is rewritten with other rows, after a shorter range and with a corrupt cache file;
    the cache is one Arrow IPC file outside every Parquet glob of the lake."""
    schema = CONTRACTS["vix_futures"].schema
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-03-01", periods=6)]
    for d in days[:5]:
        lake.write_partition("validated", "vix_futures", d, _frame(d), schema)

    def both(first, last, columns=None):
        plain = lake.read_range("validated", "vix_futures", first, last, columns, schema)
        cached = lake.read_range("validated", "vix_futures", first, last, columns, schema, reuse=True)
        pd.testing.assert_frame_equal(cached, plain)
        return cached

    both(days[0], days[4])  # cold: built
    caches = list((Path(lake.root) / "_history").rglob("*"))
    assert [p.suffix for p in caches if p.is_file()] == [".arrow"]
    assert both(days[0], days[4]).shape[0] == 5 * len(_frame())  # warm
    lake.write_partition("validated", "vix_futures", days[5], _frame(days[5]), schema)
    both(days[0], days[5])  # a new day: the cache's rows and the new file
    changed = _frame(days[1]).iloc[:3]
    lake.write_partition("validated", "vix_futures", days[1], changed, schema)  # an older day restated
    assert len(both(days[0], days[5])) == 5 * len(_frame()) + 3
    both(days[0], days[3])  # a shorter range
    both(days[0], days[5], ["date", "contract", "settle"])  # other columns: their own cache
    for p in (Path(lake.root) / "_history").rglob("*.arrow"):
        p.write_bytes(b"not an arrow file")
    both(days[0], days[5])  # unreadable: rebuilt
    con = duckdb.connect()
    n = con.execute(f"select count(*) from read_parquet('{lake.root}/**/*.parquet')").fetchone()[0]
    assert n == 5 * len(_frame()) + 3  # the cache's rows are not counted again


def test_history_cache_serves_a_look_back_that_slides_a_day_each_night(lake):
    """A nightly run's look-back starts a session later each night, and the feature sets read one
    table over look-backs of different lengths: a range that starts inside the cache is served from
    it (only the new day scanned), the cache keeps as many files before the range as the range
    has, a range that starts before it is read whole; every read equals the plain scan."""
    schema = CONTRACTS["vix_futures"].schema
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-03-01", periods=12)]
    for d in days[:10]:
        lake.write_partition("validated", "vix_futures", d, _frame(d), schema)
    scanned: list[int] = []
    real_scan = lake_module._scan

    def counting_scan(filesystem, base, files, schema_, columns):
        scanned.append(len(files))
        return real_scan(filesystem, base, files, schema_, columns)

    def both(first, last):
        scanned.clear()
        cached = lake.read_range("validated", "vix_futures", first, last, None, schema, reuse=True)
        files_scanned = sum(scanned)
        plain = lake.read_range("validated", "vix_futures", first, last, None, schema)
        pd.testing.assert_frame_equal(cached, plain)
        return files_scanned

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lake_module, "_scan", counting_scan)
        assert both(days[2], days[7]) == 6  # cold
        assert both(days[5], days[7]) == 0  # a shorter look-back inside it
        assert both(days[3], days[8]) == 1  # the next night: the new day only
        assert both(days[2], days[8]) == 0  # the files before the range were kept
        assert both(days[0], days[9]) == 10  # starts before the cache: read whole
        lake.write_partition("validated", "vix_futures", days[6], _frame(days[6]).iloc[:2], schema)  # restated
        assert both(days[4], days[9]) == 4  # from the restated day on
        lake.write_partition("validated", "vix_futures", days[10], _frame(days[10]), schema)
        assert both(days[5], days[10]) == 1
        assert both(days[0], days[10]) == 0
        lake.write_partition("validated", "vix_futures", days[11], _frame(days[11]), schema)
        assert both(days[9], days[11]) == 1  # rewritten: of the 9 files before the range, 3 stay
        (cache,) = (Path(lake.root) / "_history").rglob("*.arrow")
        held, _ = lake_module._read_history_cache(cache)
        assert [h[0] for h in held] == [f"date={d}/part-0.parquet" for d in days[6:]]  # twice the range
        assert both(days[0], days[11]) == 12  # read whole again: the leading files left the cache


def test_partitions_of_a_range_are_the_days_with_a_file_between_its_ends(lake):
    """The ranged listing (one folder listing and the range's own) names what the whole-table
    listing names inside the range: days with a partition file, not empty folders or other names."""
    schema = CONTRACTS["vix_futures"].schema
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-03-01", periods=5)]
    for d in days:
        lake.write_partition("validated", "vix_futures", d, _frame(d), schema)
    base = Path(lake.root) / "validated" / "vix_futures"
    (base / "date=2024-03-06-old").mkdir()  # not a day
    (base / "date=2024-03-09").mkdir()  # a day's folder without its file
    assert lake.partitions("validated", "vix_futures") == days
    assert lake.partitions("validated", "vix_futures", days[1], days[3]) == days[1:4]
    assert lake.partitions("validated", "vix_futures", end=days[0]) == days[:1]
    assert lake.partitions("validated", "no_such_table", days[0], days[-1]) == []


def test_writes_go_on_when_the_staging_folder_was_removed(lake):
    """Temp names are a per-process sequence in the process's staging folder: a folder removed
    between writes (a cleanup) is made again."""
    import shutil

    schema = CONTRACTS["vix_futures"].schema
    lake.write_partition("validated", "vix_futures", "2024-03-01", _frame(), schema)
    shutil.rmtree(lake.staging_dir)
    p = lake.write_partition("validated", "vix_futures", "2024-03-04", _frame("2024-03-04"), schema)
    assert p.exists() and not _staged(lake)
