"""features/* and signals/* through Dagster: a multi-month single-run range with every check
passing; the no-look-ahead proof (perturb every validated input after day t — prices, quotes,
sizes, fundamentals and their report dates, option chains, futures, breadth, rates, the macro
calendar — and every feature and signal for days <= t is unchanged); and run-range independence
(a day computed inside a long range or a short one gives the same bits)."""

import shutil
import warnings

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import scenarios as sc
from alvh_pipeline.core import verdict as verdict_core
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.definitions import defs
from alvh_pipeline.lake import Lake
from alvh_pipeline.layers import plan
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES
from alvh_pipeline.sources import synthetic
from alvh_pipeline.sources.resource import MarketSource

warnings.filterwarnings("ignore", category=dg.BetaWarning)
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
CUT = pd.Timestamp("2023-06-30")
S = all_sessions()
FIRST = S[S.get_loc(CUT) - 20]  # signal range
LAST = S[S.get_loc(CUT) + 10]
PLAN = {step.layer.name: step.start for step in plan(FIRST, LAST)}  # each layer's first day, from LAYERS
FEATURES_FROM = PLAN["features"]  # the feature history the signals read
HISTORY = PLAN["ingest"]
CFG = SimConfig(n_equities=40)
PRICE_COLS = {"open", "high", "low", "close", "bid", "ask", "settle", "underlying", "future_price",
              "eps_ttm", "cfps_ttm", "dps_ttm", "tbill_3m", "reer_index", "rate_differential", "surprise"}
COUNT_COLS = {"advancers", "decliners", "volume", "bid_size", "ask_size"}


def build_validated(root, start, end) -> Lake:
    """The validated layer as the ingest job would leave it (ingest itself is tested elsewhere)."""
    lake = Lake(str(root))
    days = S[(S >= start) & (S <= end)]
    for t in RAW_TABLES:
        frame = synthetic.generate(t, days, CFG)
        lake.write_range("validated", t, frame.sort_values(list(CONTRACTS[t].keys)), days, CONTRACTS[t].schema)
    return lake


def perturb_after(lake: Lake, cut: pd.Timestamp) -> None:
    rng = np.random.default_rng(3)
    for t in RAW_TABLES:
        for key in lake.partitions("validated", t):
            if pd.Timestamp(key) <= cut:
                continue
            f = lake.read_partition("validated", t, key)
            factor = 1 + 0.2 * rng.random(len(f))  # one per row: quotes stay uncrossed, bars consistent
            for c in f.columns:
                if c in PRICE_COLS:
                    f[c] = f[c] * factor
                elif c in COUNT_COLS:
                    f[c] = f[c] * 2
            for c in ("report_date", "event_date"):  # dates published after the cut move too
                if c in f:
                    f[c] = pd.to_datetime(f[c]) - pd.Timedelta(days=1)
            lake.write_partition("validated", t, key, f, CONTRACTS[t].schema)


def run_job(name, root, start, end):
    return defs.resolve_job_def(name).execute_in_process(
        run_config=QUIET, raise_on_error=False,
        resources={"lake": LakeResource(root=str(root)), "source": MarketSource()},
        tags={"dagster/asset_partition_range_start": start.strftime("%Y-%m-%d"),
              "dagster/asset_partition_range_end": end.strftime("%Y-%m-%d")})


ANALYTICS = plan(FIRST, LAST)[1:]  # every layer computed from the lake, over the range the next one reads


def run_analytics(root):
    """Each analytics layer over the history the layer after it reads, in lineage order."""
    return [run_job(step.layer.name, root, step.start, LAST) for step in ANALYTICS]


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    a = tmp_path_factory.mktemp("lake_a")
    b = tmp_path_factory.mktemp("lake_b")
    build_validated(a, HISTORY, LAST)
    shutil.copytree(a, b, dirs_exist_ok=True)
    perturb_after(Lake(str(b)), CUT)
    return (a, run_analytics(a)), (b, run_analytics(b))


# day-partitioned outputs (the range reports over the whole history are checked separately)
OUTPUTS = sorted(tuple(k.path) for step in ANALYTICS for a in step.layer.definitions()[0] for k in a.keys
                 if a.partitions_def is not None)
REPORTS = sorted(tuple(k.path) for step in ANALYTICS for a in step.layer.definitions()[0] for k in a.keys
                 if a.partitions_def is None)
FIRST_DAY = {g: step.start for step in ANALYTICS for g in step.layer.groups}


def test_outputs_cover_every_feature_and_signal_set():
    assert {n for layer, n in OUTPUTS if layer == "features"} >= {"pairs", "pair_inputs", "vol_surface", "liquidity"}
    assert {n for layer, n in OUTPUTS if layer == "signals"} == {"statarb", "regime"}


def test_all_layers_materialize_with_checks_passing(lakes):
    (root, results), _ = lakes
    assert all(r.success for r in results)
    checks = [c for r in results for c in r.get_asset_check_evaluations()]
    gated_reports = {("attribution", "verdict"), ("benchmarks", "comparison"), ("benchmarks", "calibration")}
    assert {tuple(c.asset_key.path) for c in checks} == set(OUTPUTS) | gated_reports  # all gated
    assert all(c.passed for c in checks), [c.description for c in checks if not c.passed]
    lake = Lake(str(root))
    for layer, name in OUTPUTS:
        assert len(lake.partitions(layer, name)) == len(S[(S >= FIRST_DAY[layer]) & (S <= LAST)]), (layer, name)
    sig = lake.read_range("signals", "statarb", FIRST, LAST)
    assert sig["model_trained"].any()  # the walk-forward model was fitted
    assert np.isfinite(sig["curvature_z"]).all()  # a full year of vol-surface history was read


def test_signals_refuse_a_lake_without_their_feature_history(tmp_path):
    lake = build_validated(tmp_path, S[S.get_loc(FIRST) - 300], LAST)
    assert run_job("features", tmp_path, FIRST, LAST).success
    res = run_job("signals", tmp_path, FIRST, LAST)
    failed = [c for c in res.get_asset_check_evaluations() if not c.passed]
    assert not res.success
    statarb = next(c for c in failed if c.asset_key.path == ["signals", "statarb"])
    assert "input_history:features/vol_surface" in statarb.metadata["failures_by_rule"].value
    assert "materialize features/vol_surface" in statarb.metadata["failures"].value
    assert lake.partitions("signals", "statarb")  # written, but the blocking check stops everything after it


DAY_LOCAL = [(layer, name) for layer, name in OUTPUTS if layer in ("features", "signals")]


def test_a_day_is_the_same_whatever_range_computed_it(lakes, tmp_path):
    (root, _), _ = lakes
    day0, day1 = S[S.get_loc(CUT) - 3], CUT
    # features recomputed over 4 days only (their look-back read from validated/*)
    short_features = tmp_path / "f"
    shutil.copytree(root, short_features)
    shutil.rmtree(short_features / "features")
    assert run_job("features", short_features, day0, day1).success
    # signals recomputed over 4 days only, on the same feature history
    short_signals = tmp_path / "s"
    shutil.copytree(root, short_signals)
    shutil.rmtree(short_signals / "signals")
    assert run_job("signals", short_signals, day0, day1).success
    for layer, name in DAY_LOCAL:
        a = Lake(str(root)).read_range(layer, name, day0, day1)
        b = Lake(str(short_features if layer == "features" else short_signals)).read_range(layer, name, day0, day1)
        # bit for bit: every trailing statistic is computed on its own window (core.rolling), the
        # IV solver per row, so where a read starts cannot move a value by a rounding
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{layer}/{name}")


@pytest.mark.parametrize("layer, name", OUTPUTS)
def test_no_look_ahead(lakes, layer, name):
    (a_root, _), (b_root, results_b) = lakes
    assert all(r.success for r in results_b)
    a = Lake(str(a_root)).read_range(layer, name, FIRST, LAST)
    b = Lake(str(b_root)).read_range(layer, name, FIRST, LAST)
    before_a, before_b = (pd.to_datetime(x["date"]) <= CUT for x in (a, b))
    pd.testing.assert_frame_equal(a[before_a].reset_index(drop=True), b[before_b].reset_index(drop=True))
    # and the perturbation did reach the days after the cut
    assert not a[~before_a].reset_index(drop=True).equals(b[~before_b].reset_index(drop=True))


BOOKS = [(layer, name) for layer, name in OUTPUTS if layer == "books"]


def _files(root, layer, name):
    return {p.relative_to(root): p.read_bytes() for p in sorted((root / layer / name).rglob("*.parquet"))}


def test_books_split_into_two_runs_equal_one_run_and_rerun_byte_identical(lakes, tmp_path):
    """Stateful books: the second run starts from the state the first left in the lake."""
    (root, _), _ = lakes
    split = tmp_path / "split"
    shutil.copytree(root, split)
    shutil.rmtree(split / "books")
    mid = S[S.get_loc(CUT) - 5]
    assert run_job("books", split, PLAN["books"], mid).success  # from the books' inception in `lakes`
    assert run_job("books", split, S[S.get_loc(mid) + 1], LAST).success
    for layer, name in BOOKS:
        assert _files(root, layer, name) == _files(split, layer, name), name
    assert run_job("books", split, PLAN["books"], LAST).success  # a re-run rewrites identical bytes
    for layer, name in BOOKS:
        assert _files(root, layer, name) == _files(split, layer, name), name


def test_books_refuse_a_run_without_the_state_of_the_day_before(lakes, tmp_path):
    (root, _), _ = lakes
    gap = tmp_path / "gap"
    shutil.copytree(root, gap)
    later = S[S.get_loc(CUT) + 3]
    for name in ("account", "condor", "statarb", "alvh", "trades"):
        shutil.rmtree(gap / "books" / name / f"date={S[S.get_loc(later) - 1].date()}", ignore_errors=True)
    res = run_job("books", gap, later, LAST)
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "needs the books state of" in str(failure.event_specific_data.error)


def test_books_trade_both_modes_within_the_sizing_rule(lakes):
    (root, _), _ = lakes
    lake = Lake(str(root))
    account = lake.read_range("books", "account", FIRST, LAST)
    assert set(account["mode"]) == {"steward", "promoter"}
    assert (account["vx_delta_dollars"] <= account["cap_dollars"] + 1e-6).all()
    trades = lake.read_range("books", "trades", FIRST, LAST)
    assert (trades["reason"] == "condor open").any()


def test_reports_cover_the_whole_history_with_a_verdict(lakes):
    (root, _), _ = lakes
    lake = Lake(str(root))
    assert set(REPORTS) == {("attribution", n) for n in ("performance", "stress", "verdict", "tearsheet")} | {
        ("benchmarks", "comparison"), ("benchmarks", "comparison_chart"), ("benchmarks", "calibration")}
    assert lake.read_document("benchmarks", "comparison_chart", "comparison.png").startswith(b"\x89PNG")
    assert not len(lake.read_table("benchmarks", "comparison"))  # a synthetic market is not held against Cboe
    perf = lake.read_table("attribution", "performance")
    assert set(perf["mode"]) == {"steward", "promoter"} and perf["irr"].notna().all()
    claims = lake.read_table("attribution", "claims")
    assert len(claims) == 3 and set(claims["status"]) <= set(verdict_core.STATUSES)
    untestable = claims[claims["status"] == verdict_core.CANNOT_BE_TESTED]
    assert (untestable["reason"].str.len() > 0).all()  # a claim that cannot be tested says why
    verdict = lake.read_table("attribution", "verdict")
    assert verdict["evaluated"].any()  # at least the synthetic shock on the last day's book
    png = (root / "attribution" / "tearsheet" / "tearsheet.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 1_000_000


def test_the_verdict_is_reproducible_byte_for_byte(lakes, tmp_path):
    (root, _), _ = lakes
    again = tmp_path / "again"
    shutil.copytree(root, again)
    assert run_job("attribution", again, PLAN["attribution"], LAST).success
    for name in ("verdict", "claims", "stress", "shock", "performance"):
        assert (root / "attribution" / name / "table.parquet").read_bytes() == \
            (again / "attribution" / name / "table.parquet").read_bytes(), name
    assert (root / "attribution" / "verdict" / "verdict.md").read_bytes() == \
        (again / "attribution" / "verdict" / "verdict.md").read_bytes()


def test_the_sweep_runs_scenarios_as_partitions_and_the_verdict_prints_their_lines(lakes):
    (root, _), _ = lakes
    keys = [s.name for s in sc.DEFAULT_GRID[2:4]]  # the default and its managed twin: one market, quoted once
    assert sc.Scenario().name == keys[0]
    resources = {"lake": LakeResource(root=str(root)), "source": MarketSource()}
    res = defs.resolve_job_def("sweep").execute_in_process(
        run_config=QUIET, raise_on_error=False, resources=resources,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]})
    assert res.success
    mats = {e.event_specific_data.materialization.partition for e in res.get_asset_materialization_events()}
    assert mats == set(keys)
    lake = Lake(str(root))
    for key in keys:
        out = lake.read_table("sweep", f"outcome/scenario={key}")
        assert out["scenario"].iloc[0] == key and out["steward_status"].iloc[0] in verdict_core.STATUSES
    # the default configuration re-run by the sweep is the lake's own books, to the cent
    default = lake.read_table("sweep", f"account/scenario={keys[0]}").assign(date=lambda x: pd.to_datetime(x["date"]))
    books = lake.read_range("books", "account", PLAN["books"], LAST).assign(date=lambda x: pd.to_datetime(x["date"]))
    both = books.merge(default, on=["date", "mode"], suffixes=("", "_sweep"))
    assert len(both) == len(books) and np.allclose(both["equity"], both["equity_sweep"], rtol=0, atol=1e-6)
    report = defs.resolve_job_def("sweep_report").execute_in_process(run_config=QUIET, raise_on_error=False,
                                                                     resources=resources)
    assert report.success
    table = lake.read_table("sweep", "robustness")
    assert (table["configurations"] == 2).all() and len(table) == 3
    assert run_job("attribution", root, PLAN["attribution"], LAST).success
    claims = lake.read_table("attribution", "claims")
    assert claims["numbers"].str.contains("of 2 configurations").all()


def ingest_drop_folder(lake_root, drop, first) -> Lake:
    """The ingest job over first..LAST from the files source on `drop`, the synthetic market as the
    fallback for what the folder lacks; every check must pass."""
    source = MarketSource(kind="files", files_root=str(drop), fallback="synthetic", seed=CFG.seed,
                          n_equities=CFG.n_equities)
    ingest = defs.resolve_job_def("ingest").execute_in_process(
        run_config=QUIET, raise_on_error=False, resources={"lake": LakeResource(root=str(lake_root)), "source": source},
        tags={"dagster/asset_partition_range_start": first.strftime("%Y-%m-%d"),
              "dagster/asset_partition_range_end": LAST.strftime("%Y-%m-%d")})
    assert ingest.success, [c.description for c in ingest.get_asset_check_evaluations() if not c.passed]
    return Lake(str(lake_root))


def test_real_chains_from_vendor_files_are_carried_to_the_verdict(lakes, tmp_path):
    """Issue 19: the last days' SPX and VIX chains re-delivered as Cboe DataShop daily zips (every
    other table from the fallback source) are ingested, gated, traded and named in the verdict's
    provenance; the books on them equal the books on the same quotes in our own layout, up to the
    rate and dividend the vendor file leaves out (completed from the T-bill and parity)."""
    from alvh_pipeline.sources import vendor_samples

    (root, _), _ = lakes
    lake_root = tmp_path / "lake"
    shutil.copytree(root, lake_root)
    redelivered = S[(S > LAST - pd.Timedelta(days=8)) & (S <= LAST)]
    drop = tmp_path / "drop"
    vendor_samples.write_datashop_days(drop, redelivered, lambda t, ds: synthetic.generate(t, ds, CFG))
    lake = ingest_drop_folder(lake_root, drop, redelivered[0])
    chain = lake.read_range("validated", "spx_options", redelivered[0], LAST)
    assert set(chain["provenance"]) == {"real:cboe_datashop"}
    for step in ANALYTICS:
        assert run_job(step.layer.name, lake_root, max(step.start, redelivered[0]), LAST).success, step.layer.name
    verdict = lake.read_table("attribution", "verdict")
    replay_row = verdict[verdict["window"].str.contains("full")]
    assert replay_row["provenance"].str.contains(r"options=.*real \(Cboe DataShop\)", regex=True).all(), \
        replay_row["provenance"].tolist()
    ours = Lake(str(root)).read_range("books", "account", redelivered[0], LAST)
    theirs = lake.read_range("books", "account", redelivered[0], LAST)
    assert np.allclose(theirs["equity"], ours["equity"], rtol=2e-3)


def test_every_other_vendor_layout_is_carried_to_the_verdict(lakes, tmp_path):
    """Issue 19: the last days re-delivered in every other layout at once: SPX chains from ORATS
    (first half of the days) and HistoricalOptionData (the rest) in one folder, VIX chains from
    DataShop, the VX curve in CFE's history layout, the VIX in Cboe's VIX_History.csv beside the
    other indexes in our layout, the equities as one long basket CSV without sectors or quotes.
    Ingested, gated, traded, and each source named in the verdict's provenance."""
    from alvh_pipeline.sources import vendor_samples as vs

    (root, _), _ = lakes
    lake_root = tmp_path / "lake"
    shutil.copytree(root, lake_root)
    days = S[(S > LAST - pd.Timedelta(days=8)) & (S <= LAST)]
    half = len(days) // 2
    drop = tmp_path / "drop"
    for table in ("spx_options", "vix_options", "vix_futures", "index_levels", "equity_bars"):
        (drop / table).mkdir(parents=True)
    ours = {t: synthetic.generate(t, days, CFG) for t in ("spx_options", "vix_options", "vix_futures",
                                                          "index_levels", "equity_bars")}
    spx = ours["spx_options"]
    vs.orats(spx[spx["date"] < days[half]]).to_csv(drop / "spx_options" / "orats.csv", index=False)
    vs.historical_option_data(spx[spx["date"] >= days[half]]).to_csv(drop / "spx_options" / "hod.csv", index=False)
    vs.datashop(None, ours["vix_options"]).to_csv(drop / "vix_options" / "UnderlyingOptionsEOD.csv", index=False)
    vs.cfe_history(ours["vix_futures"]).to_csv(drop / "vix_futures" / "vix_futures.csv", index=False)
    idx = ours["index_levels"]
    vs.vix_history(idx).to_csv(drop / "index_levels" / "VIX_History.csv", index=False)
    idx[idx["index"] != "VIX"].to_csv(drop / "index_levels" / "others.csv", index=False)
    vs.equity_basket(ours["equity_bars"]).to_csv(drop / "equity_bars" / "basket.csv", index=False)
    lake = ingest_drop_folder(lake_root, drop, days[0])
    labels = {t: set(lake.read_range("validated", t, days[0], LAST)["provenance"]) for t in ours}
    assert labels == {"spx_options": {"real:orats", "real:historical_option_data"},
                      "vix_options": {"real:cboe_datashop"}, "vix_futures": {"real:cfe"},
                      "index_levels": {"real:cboe", "synthetic"}, "equity_bars": {"real:equity_file"}}
    for step in ANALYTICS:
        assert run_job(step.layer.name, lake_root, max(step.start, days[0]), LAST).success, step.layer.name
    verdict = lake.read_table("attribution", "verdict")
    prov = " ".join(verdict.loc[verdict["window"].str.contains("full"), "provenance"])
    for named in ("real (ORATS)", "real (HistoricalOptionData)", "futures=real (CFE)", "real (Cboe index history)",
                  "equities=real (equity file)"):
        assert named in prov, (named, prov)
