"""Event-driven automation (issue 10): the drop-folder sensor launches `ingest` over exactly the
sessions of new or changed vendor files, and every later layer follows its upstream through
automation conditions, one layer a tick, the books only after their previous day. No servers: the
sensor is evaluated with `build_sensor_context`, the conditions with `evaluate_automation_conditions`
on an ephemeral instance, upstream runs are stand-in runs of the same asset keys (same partitions,
same blocking checks) executed on that instance."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_shared.serdes import serialize_value

from alvh_pipeline.automation import layer_automation_sensor
from alvh_pipeline.layers import LAYERS
from alvh_pipeline.partitions import SESSIONS_PER_BACKFILL_RUN, trading_days
from alvh_pipeline.recovery import HOST_TAG
from alvh_pipeline.sensors import RANGE_END, RANGE_START, stretches
from alvh_pipeline.sources import files, synthetic
from alvh_pipeline.sources.resource import MarketSource

WEEK = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
LATER = ["2024-03-18", "2024-03-19"]
SETTLED = time.time() - 600  # older than the sensor's settle time


@pytest.fixture(autouse=True)
def _fresh_cache():
    files.clear_cache()
    yield
    files.clear_cache()


# ---- the drop-folder sensor -------------------------------------------------------------------


def deliver(folder: Path, name: str, table: str, days: list[str], mtime: float = SETTLED, **values) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic.generate(table, days).assign(**values).to_csv(path, index=False)
    os.utime(path, (mtime, mtime))
    return path


def sessions_of(requests: list[dg.RunRequest]) -> list[str]:
    """Every partition the run requests cover, in order."""
    keys = trading_days.get_partition_keys()
    out = []
    for r in requests:
        first, last = (r.partition_key,) * 2 if r.partition_key else (r.tags[RANGE_START], r.tags[RANGE_END])
        out += keys[keys.index(first):keys.index(last) + 1]
    return out


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from alvh_pipeline.definitions import defs as project  # built once, at import

    return project


class Folder:
    """The project's sensor over a drop folder, evaluated tick after tick with the cursor it returns."""

    def __init__(self, defs: dg.Definitions, root: Path, kind: str = "files",
                 instance: dg.DagsterInstance | None = None) -> None:
        self.repo = defs.get_repository_def()
        self.sensor = self.repo.get_sensor_def("drop_folder")
        self.instance = instance or dg.DagsterInstance.ephemeral()
        self.source = MarketSource(kind=kind, files_root=str(root))
        self.cursor: str | None = None

    def tick(self):
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, repository_def=self.repo,
                                          resources={"source": self.source})
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data


def test_new_files_run_ingest_over_exactly_their_sessions(defs, tmp_path):
    deliver(tmp_path, "rates.csv", "rates", WEEK)
    deliver(tmp_path, "breadth/2024-03.csv", "breadth", LATER)
    folder = Folder(defs, tmp_path)
    data = folder.tick()
    assert sessions_of(data.run_requests) == WEEK + LATER
    week, later = data.run_requests  # one run per stretch of consecutive sessions, by range tags
    assert (week.tags[RANGE_START], week.tags[RANGE_END]) == (WEEK[0], WEEK[-1]) and week.partition_key is None
    assert later.tags["alvh/drop_files"] == "breadth/2024-03.csv, rates.csv"
    assert all(r.run_key.startswith("drop:") for r in data.run_requests)
    again = folder.tick()  # the returned cursor: nothing is new
    assert again.run_requests == [] and "no new or changed vendor file" in again.skip_message


def test_a_changed_file_runs_only_its_sessions_and_a_touch_runs_nothing(defs, tmp_path):
    rates = deliver(tmp_path, "rates.csv", "rates", WEEK)
    deliver(tmp_path, "breadth.csv", "breadth", LATER)
    folder = Folder(defs, tmp_path)
    folder.tick()
    os.utime(rates, (SETTLED + 60, SETTLED + 60))  # same bytes, new mtime
    touched = folder.tick()
    assert touched.run_requests == []
    deliver(tmp_path, "breadth.csv", "breadth", LATER, mtime=SETTLED + 120, advancers=1234)  # edited
    changed = folder.tick()
    assert sessions_of(changed.run_requests) == LATER
    assert changed.run_requests[0].tags["alvh/drop_files"] == "breadth.csv"
    assert folder.tick().run_requests == []


def test_same_size_edit_on_the_same_mtime_is_seen_by_its_digest(defs, tmp_path):
    path = deliver(tmp_path, "rates.csv", "rates", WEEK[:1], tbill_3m=0.0512)
    folder = Folder(defs, tmp_path)
    folder.tick()
    stat = path.stat()
    deliver(tmp_path, "rates.csv", "rates", WEEK[:1], tbill_3m=0.0513)  # one digit: same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a coarse clock: the mtime moved 1 ns
    assert path.stat().st_size == stat.st_size
    assert sessions_of(folder.tick().run_requests) == WEEK[:1]


def test_run_keys_are_stable_across_repeated_evaluations(defs, tmp_path):
    deliver(tmp_path, "rates.csv", "rates", WEEK)
    first, second = Folder(defs, tmp_path), Folder(defs, tmp_path)
    keys = [r.run_key for r in first.tick().run_requests]
    assert keys == [r.run_key for r in second.tick().run_requests]  # a tick retried with the same cursor
    deliver(tmp_path, "rates.csv", "rates", WEEK, mtime=SETTLED + 5, tbill_3m=0.01)
    changed = first.tick().run_requests
    assert sessions_of(changed) == WEEK and changed[0].run_key not in keys


def test_a_file_still_being_written_waits_for_a_later_tick(defs, tmp_path):
    path = deliver(tmp_path, "rates.csv", "rates", WEEK, mtime=time.time())
    folder = Folder(defs, tmp_path)
    fresh = folder.tick()
    assert fresh.run_requests == [] and "still being written" in fresh.skip_message
    os.utime(path, (SETTLED, SETTLED))
    assert sessions_of(folder.tick().run_requests) == WEEK


def test_a_refused_file_is_logged_and_not_read_again_until_it_changes(defs, tmp_path, monkeypatch):
    frame = synthetic.generate("rates", WEEK[:2]).astype({"date": object})
    frame.loc[1, "date"] = "2024-03-09"  # a Saturday: the files source refuses the file
    frame.to_csv(tmp_path / "rates.csv", index=False)
    os.utime(tmp_path / "rates.csv", (SETTLED, SETTLED))
    reads = []
    real = files.read_file
    monkeypatch.setattr(files, "read_file", lambda p, t: reads.append(p) or real(p, t))
    folder = Folder(defs, tmp_path)
    data = folder.tick()
    assert data.run_requests == [] and "1 file(s) refused" in data.skip_message
    assert folder.tick().run_requests == [] and len(reads) == 1
    deliver(tmp_path, "rates.csv", "rates", WEEK[:2], mtime=SETTLED + 1)
    assert sessions_of(folder.tick().run_requests) == WEEK[:2]


def test_first_evaluation_skips_sessions_the_instance_already_ingested(defs, tmp_path):
    deliver(tmp_path, "rates.csv", "rates", WEEK)
    instance = dg.DagsterInstance.ephemeral()
    for day in WEEK[:3]:  # e.g. `make run` ingested these before the sensor was started
        instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "rates"], partition=day))
    folder = Folder(defs, tmp_path, instance=instance)
    assert sessions_of(folder.tick().run_requests) == WEEK[3:]
    deliver(tmp_path, "rates.csv", "rates", WEEK, mtime=SETTLED + 1, tbill_3m=0.02)
    assert sessions_of(folder.tick().run_requests) == WEEK  # later: a changed file runs every session


def test_other_sources_and_a_missing_folder_skip_saying_why(defs, tmp_path):
    deliver(tmp_path, "rates.csv", "rates", WEEK)
    synthetic_source = Folder(defs, tmp_path, kind="synthetic").tick()
    assert synthetic_source.run_requests == [] and "'synthetic'" in synthetic_source.skip_message
    missing = Folder(defs, tmp_path / "nowhere").tick()
    assert missing.run_requests == [] and "is not a directory" in missing.skip_message


def test_stretches_follow_the_exchange_calendar_and_the_run_size():
    keys = trading_days.get_partition_keys()
    # Good Friday 2024-03-29 is no session: Thursday and Monday are consecutive partitions
    assert stretches(["2024-03-28", "2024-04-01", "2024-04-03"], keys) == [
        ("2024-03-28", "2024-04-01"), ("2024-04-03", "2024-04-03")]
    year = keys[keys.index("2020-01-02"):keys.index("2020-01-02") + SESSIONS_PER_BACKFILL_RUN + 10]
    runs = stretches(year, keys)
    assert [len(keys[keys.index(a):keys.index(b) + 1]) for a, b in runs] == [SESSIONS_PER_BACKFILL_RUN, 10]


# ---- automation: the layers after the first follow their upstream ------------------------------

DAY, PREV = "2024-03-05", "2024-03-04"


class Lineage:
    """An ephemeral instance, the automation conditions evaluated tick after tick as
    `layer_automation_sensor` does (its selection, the cursor carried over), and stand-in runs
    that materialize asset keys of the real graph with their blocking checks. The first tick only
    starts watching: runs before it are history."""

    _names = itertools.count()

    def __init__(self, defs: dg.Definitions) -> None:
        self.defs = defs
        self.graph = defs.resolve_asset_graph()
        self.instance = dg.DagsterInstance.ephemeral()
        self.selection = layer_automation_sensor().asset_selection
        self.cursor = None

    def keys(self, *groups: str) -> list[dg.AssetKey]:
        """The assets of `groups`, upstream first (lineage order of their groups)."""
        order = [g for entry in LAYERS for g in entry.groups]
        found = [k for k in self.graph.get_all_asset_keys() if self.graph.get(k).group_name in groups]
        return sorted(found, key=lambda k: (order.index(self.graph.get(k).group_name), str(k)))

    def run(self, groups: tuple[str, ...], day: str, tags: dict | None = None, failing: tuple[str, ...] = ()) -> None:
        """One run materializing the partitioned assets of `groups` for `day` (upstream first, as a
        job run does), every blocking check passing except those on the assets named in `failing`."""
        keys = [k for k in self.keys(*groups) if self.graph.get(k).partitions_def is not None]
        checks = sorted({c for k in keys for c in self.graph.get(k).check_keys}, key=str)

        @dg.multi_asset(name=f"stand_in_{next(self._names)}", partitions_def=trading_days,
                        specs=[dg.AssetSpec(k, partitions_def=trading_days) for k in keys],
                        check_specs=[dg.AssetCheckSpec(c.name, asset=c.asset_key, blocking=True,
                                                       partitions_def=trading_days) for c in checks])
        def stand_in():
            for k in keys:
                yield dg.MaterializeResult(asset_key=k)
            for c in checks:
                yield dg.AssetCheckResult(asset_key=c.asset_key, check_name=c.name,
                                          passed=c.asset_key.to_user_string() not in failing)

        result = dg.materialize([stand_in], partition_key=day, instance=self.instance, tags=tags or {},
                                raise_on_error=False)
        assert result.success != bool(failing)  # a failed blocking check fails its step, after recording

    def report(self, *names: str) -> None:
        for name in names:  # an unpartitioned report's run, recorded without a run
            self.instance.report_runless_asset_event(dg.AssetMaterialization(["attribution", name]))

    def tick(self) -> dict[str, list[str]]:
        """One evaluation: what it requests, asset -> sorted partitions ('-' when unpartitioned)."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor,
                                                   asset_selection=self.selection)
        self.cursor = result.cursor
        return {k.to_user_string(): sorted(p or "-" for p in result.get_requested_partitions(k))
                for k in sorted(self.graph.get_all_asset_keys(), key=str) if result.get_num_requested(k)}


def layer(lineage: Lineage, group: str, *partitions: str) -> dict[str, list[str]]:
    return {k.to_user_string(): list(partitions) for k in lineage.keys(group)}


INGEST = tuple(LAYERS[0].groups)


def test_one_day_of_ingest_brings_every_layer_of_that_day_up_to_date(defs):
    lineage = Lineage(defs)
    lineage.run(("books",), PREV)  # the books state of the day before exists
    assert lineage.tick() == {}
    lineage.run(INGEST, DAY)  # e.g. a UI run of `ingest` for one day
    assert lineage.tick() == layer(lineage, "features", DAY)
    # the cursor written every tick: ~45 KB an asset, most of it the partitions definition's 270
    # holidays in the two stored subsets (Dagster's built-in eager() composition: 0.8-2.5 MB an asset)
    automated = lineage.keys(*(g for e in LAYERS[1:] for g in e.groups))
    assert len(serialize_value(lineage.cursor)) < 60_000 * len(automated)
    assert lineage.tick() == {}  # handled: nothing twice
    lineage.run(("features",), DAY)
    assert lineage.tick() == layer(lineage, "signals", DAY)
    lineage.run(("signals",), DAY)
    assert lineage.tick() == layer(lineage, "books", DAY)
    lineage.run(("books",), DAY)
    assert lineage.tick() == {"attribution/daily_pnl": [DAY]}  # the reports wait for it
    lineage.run(("attribution",), DAY)
    assert lineage.tick() == {"attribution/performance": ["-"], "attribution/stress": ["-"]}
    lineage.report("performance", "stress")
    assert lineage.tick() == {"attribution/verdict": ["-"]}  # the tearsheet waits for it
    lineage.report("verdict")
    assert lineage.tick() == {"attribution/tearsheet": ["-"]}
    lineage.report("tearsheet")
    assert lineage.tick() == {}


def test_books_wait_for_their_previous_day(defs):
    lineage = Lineage(defs)
    assert lineage.tick() == {}
    lineage.run(INGEST + ("features", "signals"), DAY)
    assert lineage.tick() == {}  # signals of DAY are there, the books of PREV are not
    lineage.run(("books",), PREV)
    assert lineage.tick() == layer(lineage, "books", DAY)  # the reports wait for these books


def test_consecutive_new_days_of_books_are_requested_together_in_order(defs):
    lineage = Lineage(defs)
    lineage.run(("books",), "2024-03-01")
    assert lineage.tick() == {}
    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    for day in days:
        lineage.run(INGEST + ("features", "signals"), day)
    assert lineage.tick() == layer(lineage, "books", *days)  # one request: a single-run backfill, in order


def test_a_failed_gate_holds_what_reads_it(defs):
    lineage = Lineage(defs)
    assert lineage.tick() == {}
    lineage.run(INGEST, DAY)
    assert lineage.tick() == layer(lineage, "features", DAY)
    lineage.run(("features",), DAY, failing=("features/vol_surface",))
    graph = lineage.graph
    held = {k.to_user_string() for k in lineage.keys("signals")
            if dg.AssetKey(["features", "vol_surface"]) in graph.get(k).parent_entity_keys}
    assert held  # signals/regime reads the volatility surface
    got = lineage.tick()
    assert got == {k: v for k, v in layer(lineage, "signals", DAY).items() if k not in held}


def test_cli_runs_and_runs_of_several_layers_trigger_nothing_twice(defs):
    lineage = Lineage(defs)
    lineage.run(("books",), "2024-03-01")
    assert lineage.tick() == {}
    lineage.run(INGEST, DAY, tags={HOST_TAG: "somewhere"})  # `cli run` runs every layer of its plan itself
    assert lineage.tick() == {}
    lineage.run(INGEST + ("features", "signals", "books", "attribution"), PREV)  # e.g. the nightly all_layers
    # every partitioned layer was computed after its upstream in that run; only the reports follow
    assert lineage.tick() == {"attribution/performance": ["-"], "attribution/stress": ["-"]}


def test_every_asset_after_the_first_layer_follows_its_upstream(defs):
    from alvh_pipeline.assets import ingest

    graph = defs.resolve_asset_graph()
    for entry in LAYERS[1:]:
        for key in (k for k in graph.get_all_asset_keys() if graph.get(k).group_name in entry.groups):
            label = graph.get(key).automation_condition.get_label()
            in_order = entry.stateful and graph.get(key).partitions_def is not None  # a stateful layer's days
            assert label == ("follows_upstream_in_order" if in_order else "follows_upstream"), key
    own = {spec.key: spec.automation_condition for a in ingest.assets for spec in a.specs}
    assert all(graph.get(k).automation_condition == c for k, c in own.items())  # the first layer: as declared
    repo = defs.get_repository_def()
    assert repo.get_sensor_def("layer_automation").default_status == dg.DefaultSensorStatus.RUNNING
    assert repo.get_sensor_def("drop_folder").default_status == dg.DefaultSensorStatus.RUNNING
    assert "default_automation_condition_sensor" in {s.name for s in repo.sensor_defs}  # validated/*, as before
