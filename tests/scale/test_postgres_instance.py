"""Issue 10: the Dagster instance on PostgreSQL (deploy/dagster.postgres.yaml, dagster-postgres).

A real server from Debian's `postgresql` package (scripts/servers/postgres.py: a throwaway cluster
in a temp folder on 127.0.0.1, password authentication) holds the instance of a temp DAGSTER_HOME.
A backfill of 20 sessions runs through every layer in a child process the way `cli run` runs each
layer (`cli.run_job`: `execute_in_process` on `DagsterInstance.get()`), with the synthetic source
and a temp lake from the environment. The runs, the materializations of every asset for the 20
partitions and the check results are then read back through a DagsterInstance loaded from that
DAGSTER_HOME, and counted again with raw SQL in Dagster's own tables.

The look-back the layers read before the first session (two years of vol surface behind the
signals' training window, a year of prices behind the features) is written straight into the lake
first, exactly as far back as the layers' declared inputs reach, as the layers would write it:
validated tables from the synthetic source, feature history through each feature set's own compute
and write, the signals and books of the session before through their jobs (in memory, not on the
instance under test). Computing it through `cli run` would cost minutes and tell nothing more about
the storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import server_scripts

from alvh_pipeline.assets import attribution as attribution_assets
from alvh_pipeline.assets import books as books_assets
from alvh_pipeline.assets._shell import layer_table, read_inputs
from alvh_pipeline.core.calendar import all_sessions, sessions_between
from alvh_pipeline.core.feature_sets import FEATURE_SETS
from alvh_pipeline.core.inputs import Input
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.core.signal_sets import SIGNAL_SETS
from alvh_pipeline.lake import Lake
from alvh_pipeline.layers import LAYERS
from alvh_pipeline.schemas import CONTRACTS
from alvh_pipeline.sources import synthetic

warnings.filterwarnings("ignore", category=dg.BetaWarning)
ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "servers" / "install.sh"
S = all_sessions()
# the second session of a month: the walk-forward model's refit in force is the session before
# (first of the month), so the training window it reads starts as late as it can
START = pd.Timestamp("2023-06-02")
END = S[S.get_loc(START) + 19]  # 20 sessions: 2023-06-02..2023-06-30
BEFORE = S[S.get_loc(START) - 1]  # the session before: books state and attribution's yesterday
N_EQUITIES, SEED = 40, 7  # the synthetic market of the seeded history and of the backfill's ingest
RANGE = START.strftime("%Y-%m-%d"), END.strftime("%Y-%m-%d")
RANGE_TAGS = {"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[1]}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
# what `cli run` does for each layer, stopping at the first that fails
BACKFILL = ("import sys\nfrom alvh_pipeline import cli\nfrom alvh_pipeline.layers import LAYERS\n"
            "sys.exit(0 if all(cli.run_job(entry.name, {start!r}, {end!r}) for entry in LAYERS) else 1)\n")


pg = server_scripts.load("postgres")


# ---- the look-back, seeded ------------------------------------------------------------------

def _reads(inputs: tuple[Input, ...], first_day: pd.Timestamp, out: dict[tuple[str, str], pd.Timestamp]) -> None:
    """Record the earliest day each input reads for a run whose first day is `first_day`."""
    dates = pd.DatetimeIndex([first_day])
    for i in inputs:
        key = (i.layer, i.table)
        out[key] = min(out.get(key, i.first_day(dates)), i.first_day(dates))


def history_reads() -> dict[tuple[str, str], pd.Timestamp]:
    """(layer, table) -> the first day read before START, from the inputs the layers declare: the
    backfill's features, signals, books and attribution, and the seeded runs of the session before."""
    out: dict[tuple[str, str], pd.Timestamp] = {}
    _reads(attribution_assets.INPUTS, START, out)
    for inputs in (books_assets.INPUTS, *(s.inputs for s in SIGNAL_SETS.values())):
        _reads(inputs, BEFORE, out)  # the session before, seeded; the backfill reads less far back
    for fs in FEATURE_SETS.values():
        _reads(fs.inputs, START, out)
        if ("features", fs.name) in out:  # seeded feature history: its own look-back of validated rows
            _reads(fs.inputs, out[("features", fs.name)], out)
    return {key: day for key, day in out.items() if day < START}


def seed_history(root: Path) -> None:
    """Write the look-back of `history_reads` into the lake at `root`."""
    from alvh_pipeline.definitions import defs
    from alvh_pipeline.resources import LakeResource, StrategyConfig
    from alvh_pipeline.sources.resource import MarketSource

    lake, reads, cfg = Lake(str(root)), history_reads(), SimConfig(seed=SEED, n_equities=N_EQUITIES)
    for (layer, table), first in reads.items():
        if layer == "validated":  # as ingest publishes it: the source's rows, typed to the contract
            days = sessions_between(first, BEFORE)
            frame = synthetic.generate(table, days, cfg).sort_values(list(CONTRACTS[table].keys))
            lake.write_range("validated", table, frame, days, CONTRACTS[table].schema)
    for (layer, name), first in reads.items():
        if layer == "features":  # as the feature asset computes and writes it
            fs, days = FEATURE_SETS[name], sessions_between(first, BEFORE)
            layer_table("features", name).write_days(lake, fs.compute(read_inputs(lake, fs.inputs, days), days),
                                                     days, fs.keys)
    resources = {"lake": LakeResource(root=str(root)), "source": MarketSource(seed=SEED, n_equities=N_EQUITIES),
                 "strategy": StrategyConfig()}
    day = BEFORE.strftime("%Y-%m-%d")
    for job in ("signals", "books"):  # the session before, on a throwaway in-memory instance
        result = defs.resolve_job_def(job).execute_in_process(
            run_config=QUIET, raise_on_error=False, resources=resources,
            tags={"dagster/asset_partition_range_start": day, "dagster/asset_partition_range_end": day})
        assert result.success, f"seeding {job} at {day} failed"


# ---- the server, the instance, the backfill ---------------------------------------------------

@dataclass
class Backfill:
    server: pg.PostgresServer
    home: Path
    lake: Path
    instance: dg.DagsterInstance
    seed_seconds: float
    seconds: float
    output: str


def _scratch_dir() -> str | None:
    """Where the temp lake goes: tmpfs when there is one with room. The lake fsyncs every file it
    writes (~6,000 here); on a shared disk that is most of the seeding's wall time, in memory it is
    free, and where the lake lives is not what this test is about. None: the system temp dir."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * 2**30:
        return str(shm)
    return None


def _env(server, home: Path, lake: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALVH_", "DAGSTER_"))}  # only our settings
    return {**env, **server.dagster_env(), "DAGSTER_HOME": str(home), "ALVH_SOURCE": "synthetic",
            "ALVH_LAKE_URI": str(lake), "ALVH_SEED": str(SEED), "ALVH_N_EQUITIES": str(N_EQUITIES),
            "GX_ANALYTICS_ENABLED": "False", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def backfill(tmp_path_factory) -> Iterator[Backfill]:
    try:
        server = pg.start()
    except pg.PostgresUnavailable as exc:  # not installable here; an installed server that fails is an error
        pytest.skip(f"no PostgreSQL server here ({exc}); {INSTALL_SCRIPT} installs Debian's postgresql")
    lake = Path(tempfile.mkdtemp(prefix="alvh-pg-test-lake-", dir=_scratch_dir()))
    try:
        home = tmp_path_factory.mktemp("dagster_home")
        (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
        t0 = time.time()
        seed_history(lake)
        seed_seconds, t0 = time.time() - t0, time.time()
        env = _env(server, home, lake)
        proc = subprocess.run([sys.executable, "-c", BACKFILL.format(start=RANGE[0], end=RANGE[1])], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=600)
        seconds = time.time() - t0
        assert proc.returncode == 0, f"backfill failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        with pytest.MonkeyPatch.context() as mp:  # the yaml's `env:` credentials, for this process too
            for key, value in server.dagster_env().items():
                mp.setenv(key, value)
            with dg.DagsterInstance.from_config(str(home)) as instance:
                yield Backfill(server, home, lake, instance, seed_seconds, seconds, proc.stdout)
    finally:
        pg.stop(server.root)
        shutil.rmtree(lake, ignore_errors=True)


def _backfill_runs(instance: dg.DagsterInstance) -> dict[str, dg.DagsterRun]:
    runs = instance.get_runs(filters=dg.RunsFilter(tags=RANGE_TAGS))
    return {run.job_name: run for run in runs}


PARTITIONED = sorted((entry.name, key) for entry in LAYERS for a in entry.definitions()[0] for key in a.keys
                     if a.partitions_def is not None)
REPORTS = sorted((entry.name, key) for entry in LAYERS for a in entry.definitions()[0] for key in a.keys
                 if a.partitions_def is None)
CHECKS = sorted((entry.name, key) for entry in LAYERS for c in entry.definitions()[1] for key in c.check_keys)
PARTITION_KEYS = {d.strftime("%Y-%m-%d") for d in sessions_between(START, END)}


@pytest.mark.slow
def test_the_instance_is_postgres_and_nothing_went_to_sqlite(backfill):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    instance = backfill.instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    # the SQLite defaults would have created history/runs.db and storage/ under DAGSTER_HOME
    assert not (backfill.home / "history").exists() and not (backfill.home / "schedules").exists()
    assert not list(backfill.home.rglob("*.db"))


@pytest.mark.slow
def test_one_successful_run_per_layer_over_the_20_sessions(backfill):
    runs = _backfill_runs(backfill.instance)
    assert sorted(runs) == sorted(entry.name for entry in LAYERS)
    assert {name: run.status for name, run in runs.items()} == {
        entry.name: dg.DagsterRunStatus.SUCCESS for entry in LAYERS}
    assert len(PARTITION_KEYS) == 20
    print(f"\nlook-back seeded in {backfill.seed_seconds:.1f}s; backfill of {len(PARTITION_KEYS)} sessions through "
          f"{len(LAYERS)} layers on PostgreSQL: {backfill.seconds:.1f}s\n{backfill.output}")


@pytest.mark.slow
def test_every_asset_materialized_for_the_20_partitions_read_back(backfill):
    instance, runs = backfill.instance, _backfill_runs(backfill.instance)
    for job, key in PARTITIONED:
        records = instance.get_records_for_run(runs[job].run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                                               limit=10_000).records
        partitions = [r.event_log_entry.dagster_event.partition for r in records
                      if r.event_log_entry.dagster_event.asset_key == key]
        assert sorted(partitions) == sorted(PARTITION_KEYS), key.to_user_string()
        # and through the asset index the UI reads
        assert instance.get_materialized_partitions(key) == PARTITION_KEYS, key.to_user_string()
    for job, key in REPORTS:  # the range reports over everything attribution holds: one, unpartitioned
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.run_id == runs[job].run_id, key.to_user_string()
    rows = instance.get_latest_materialization_event(dg.AssetKey(["books", "account"])).asset_materialization
    assert rows.metadata["rows"].value > 0
    lake = Lake(str(backfill.lake))
    assert set(lake.partitions("attribution", "daily_pnl")) == PARTITION_KEYS  # the lake agrees with the instance


@pytest.mark.slow
def test_every_check_evaluated_and_passed_read_back(backfill):
    instance, runs = backfill.instance, _backfill_runs(backfill.instance)
    seen: dict[dg.AssetCheckKey, list[bool]] = {}
    for run in runs.values():
        for record in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                                   limit=10_000).records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            seen.setdefault(evaluation.asset_check_key, []).append(evaluation.passed)
    assert sorted(seen) == sorted(key for _, key in CHECKS)  # every layer's checks, blocking gates included
    failed = [key.to_user_string() for key, passed in seen.items() if not all(passed)]
    assert not failed, failed
    # the check history the UI shows, from the same storage
    for _, key in CHECKS:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
        assert history and history[0].status.value == "SUCCEEDED", key.to_user_string()
    # per partition (the UI's partition health, the layer automation): each range run's result on
    # every session it planned (alvh_pipeline/postgres_storage.py), not 20 rows left PLANNED
    from alvh_pipeline.postgres_storage import RangeCheckPostgresEventLogStorage

    assert isinstance(instance.event_log_storage, RangeCheckPostgresEventLogStorage)
    partitioned = [key for _, key in CHECKS if any(
        i.partition_key for i in instance.event_log_storage.get_asset_check_partition_info([key]))]
    assert dg.AssetCheckKey(dg.AssetKey(["raw", "spx_options"]), "ge_suite") in partitioned
    for key in partitioned:
        status = {i.partition_key: i.latest_execution_status.value
                  for i in instance.event_log_storage.get_asset_check_partition_info([key])}
        assert status == {p: "SUCCEEDED" for p in PARTITION_KEYS}, key.to_user_string()


@pytest.mark.slow
def test_dagster_tables_in_postgres_hold_the_runs_and_events(backfill):
    import psycopg2

    instance, runs = backfill.instance, _backfill_runs(backfill.instance)

    def through_the_api(kind: dg.DagsterEventType) -> int:
        return sum(len(instance.get_records_for_run(run.run_id, of_type=kind, limit=10_000).records)
                   for run in runs.values())

    materializations = through_the_api(dg.DagsterEventType.ASSET_MATERIALIZATION)
    evaluations = through_the_api(dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    conn = psycopg2.connect(backfill.server.dsn())
    try:
        with conn.cursor() as cur:
            cur.execute("select version()")
            assert cur.fetchone()[0].startswith("PostgreSQL")
            cur.execute("select pipeline_name, status from runs")
            assert sorted(cur.fetchall()) == sorted((entry.name, "SUCCESS") for entry in LAYERS)
            cur.execute("select dagster_event_type, count(*) from event_logs where run_id = any(%s) "
                        "group by dagster_event_type", ([run.run_id for run in runs.values()],))
            counts = dict(cur.fetchall())
    finally:
        conn.close()
    kinds = dg.DagsterEventType  # the column holds the enum's value (RUN_SUCCESS is stored as PIPELINE_SUCCESS)
    assert counts[kinds.ASSET_MATERIALIZATION.value] == materializations
    assert materializations == len(PARTITIONED) * len(PARTITION_KEYS) + len(REPORTS)
    assert counts[kinds.ASSET_CHECK_EVALUATION.value] == evaluations >= len(CHECKS)
    assert counts[kinds.RUN_SUCCESS.value] == len(LAYERS)
