"""benchmarks/*: Cboe's CNDR, PUT and BXM replicated by their published rules on the validated SPX
chains the books trade (`core.benchmarks`), daily; then the replicated calendar-year returns
against Cboe's published ones (a plot in the UI, a tolerance check), and the chain model's
calibration report (in-sample 2004-06 / 2010-14 fit, 2007-09 out-of-sample, on the replay's real
SPX / VIX paths). Stateful like the books: a run continues each index from the lake's row of the
session before it, in chunks of sessions (bounded memory)."""

import base64
import hashlib
import importlib.metadata
import sys
from functools import lru_cache
from pathlib import Path

import dagster as dg
import pandas as pd

from alvh_pipeline.assets._shell import (
    check_result,
    input_keys,
    layer_table,
    missing_inputs,
    partition_dates,
    table_md,
)
from alvh_pipeline.core import benchmarks as bm
from alvh_pipeline.core import chain_calibration as cc
from alvh_pipeline.core import chain_model as cm
from alvh_pipeline.core import provenance
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.check_report import CheckReport, RuleFailure, finite_columns, unique_keys
from alvh_pipeline.core.inputs import Input
from alvh_pipeline.lake import Lake
from alvh_pipeline.partitions import STATEFUL, trading_days
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import benchmark_schema

INDEXES = layer_table("benchmarks", "indexes")
COMPARISON = layer_table("benchmarks", "comparison")
COMPARISON_CHART = layer_table("benchmarks", "comparison_chart")
CALIBRATION = layer_table("benchmarks", "calibration")
CHUNK_SESSIONS = 63  # sessions of chains read at a time
CHAIN_COLUMNS = ("date", "expiry", "strike", "option_type", "bid", "ask", "underlying", "rate", "dividend_yield",
                 "model_iv")
INPUTS = (Input("validated", "spx_options", columns=CHAIN_COLUMNS), Input("validated", "index_levels"),
          Input("validated", "rates", columns=("date", "tbill_3m")))


class MissingBenchmarkStateError(RuntimeError):
    pass


class MissingBenchmarkInputError(RuntimeError):
    pass


def _days(lake: Lake, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """SPX open / close and the T-bill per session of `dates` (what `benchmarks.replicate` reads)."""
    idx = layer_table("validated", "index_levels").read(lake, dates[0], dates[-1],
                                                         ["date", "index", "open", "close"])
    spx = idx[idx["index"] == "SPX"].assign(date=lambda x: pd.to_datetime(x["date"])).set_index("date")
    rates = layer_table("validated", "rates").read(lake, dates[0], dates[-1], ["date", "tbill_3m"])
    rate = rates.assign(date=pd.to_datetime(rates["date"])).set_index("date")["tbill_3m"]
    return pd.DataFrame({"date": dates, "spx_open": spx["open"].reindex(dates).to_numpy(float),
                         "spx_close": spx["close"].reindex(dates).to_numpy(float),
                         "rate": rate.reindex(dates).ffill().to_numpy(float)})


def _chain(lake: Lake, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The validated SPX chain rows of the one monthly expiry an index holds at each close."""
    chain = layer_table("validated", "spx_options").read(lake, dates[0], dates[-1], list(CHAIN_COLUMNS))
    d = pd.to_datetime(chain["date"])
    held = bm.held_expiry(pd.DatetimeIndex(d.unique()))
    held_of = pd.Series(held, index=pd.DatetimeIndex(d.unique()))
    return chain[pd.to_datetime(chain["expiry"]).to_numpy() == held_of.reindex(d).to_numpy()].reset_index(drop=True)


def initial_states(lake: Lake, start: pd.Timestamp) -> tuple[dict[str, bm.IndexState | None], str]:
    """Each index at the close of the session before `start` (None: the lake holds no row for it,
    the index starts at the first roll date of the run). A gap is refused, as for the books."""
    before = INDEXES.days_present(lake, end=start - pd.Timedelta(days=1))  # the days held before `start`
    if not len(before):
        return dict.fromkeys(bm.INDEXES), f"inception at the first roll date from {start.date()}"
    prev = all_sessions()[all_sessions() < start][-1]
    if before[-1] != prev:
        raise MissingBenchmarkStateError(
            f"benchmarks: a run starting {start.date()} needs the benchmark rows of {prev.date()}, but the lake's "
            f"benchmarks end on {before[-1].date()}: materialize benchmarks from {before[-1].date()} through "
            f"{prev.date()} first")
    rows = INDEXES.read(lake, prev, prev)
    states = {name: (bm.IndexState.from_row(rows[rows["index"] == name].iloc[-1])
                     if (rows["index"] == name).any() else None) for name in bm.INDEXES}
    return states, f"continued from the benchmark rows of {prev.date()}"


@dg.asset(key=INDEXES.key, deps=input_keys(INPUTS), partitions_def=trading_days,
          backfill_policy=STATEFUL, group_name="benchmarks", kinds={"parquet"},
          description="Cboe CNDR (0.20/0.05 delta iron condor, T-bills = 10 x max loss), PUT (ATM put, T-bills = "
                      "strike) and BXM (SPX + ATM call) replicated by their published rules on validated/spx_options: "
                      "per index and day the index value, cash, legs held, premium and SOQ settlement on roll dates.")
def benchmark_indexes(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    dates = partition_dates(context)
    gaps = missing_inputs(lake.lake, INPUTS, dates)
    if gaps:  # refused before anything is written
        raise MissingBenchmarkInputError("benchmarks: " + "; ".join(f.line() for f in gaps))
    states, origin = initial_states(lake.lake, dates[0])
    rows = 0
    last = {}
    for start in range(0, len(dates), CHUNK_SESSIONS):  # in order: each chunk continues the last one
        chunk = dates[start:start + CHUNK_SESSIONS]
        days, chain = _days(lake.lake, chunk), _chain(lake.lake, chunk)
        frames = []
        for name in bm.INDEXES:
            out = bm.replicate(name, days, chain, states[name])
            if len(out):
                states[name] = bm.IndexState.from_row(out.iloc[-1])
                last[name] = float(out["value"].iloc[-1])
            frames.append(out)
        frame = pd.concat(frames, ignore_index=True)
        rows += INDEXES.write_days(lake.lake, frame, chunk, ("date", "index"),
                                   benchmark_schema(bm.BENCHMARK_COLUMNS))
    return dg.MaterializeResult(metadata={"rows": rows, "partitions": len(dates), "state": origin,
                                          **{f"{k}_value": v for k, v in last.items()},
                                          "path": str(INDEXES.path(lake.lake))})


@dg.asset_check(asset=INDEXES.key, name="benchmark_check", blocking=True, partitions_def=trading_days,
                description="one row per index and day once it has started, finite positive values, no index "
                            "stopped; the count of legs marked at intrinsic (off the listed strikes) in metadata")
def benchmark_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    dates = partition_dates(context)
    f = INDEXES.read_days(lake.lake, dates)
    failures = unique_keys(f, ("date", "index")) + finite_columns(f, ("value", "cash", "option_value"))
    if len(f):
        bad = ~(f["value"].to_numpy(float) > 0)
        if bad.any():
            failures.append(RuleFailure.from_mask("positive_value", "value", "an index value at or below zero",
                                                  f, bad))
        d = pd.to_datetime(f["date"])
        for name in bm.INDEXES:  # once started, an index has a row every later session of the run
            started = d[f["index"] == name]
            if len(started):
                gap = dates[dates >= started.min()].difference(pd.DatetimeIndex(started))
                if len(gap):
                    failures.append(RuleFailure("continuous", "date", f"{name} missing on {len(gap)} session(s) "
                                                f"after it started", len(gap), [x.strftime("%Y-%m-%d") for x in gap]))
    return check_result(CheckReport(INDEXES.label, len(f), failures),
                        marks_at_intrinsic=int(f["marks_intrinsic"].sum()) if len(f) else 0)


def _held_values(lake: Lake) -> tuple[pd.DataFrame, int]:
    """The replicated values on the sessions whose SPX is real (validated/index_levels provenance):
    only there do Cboe's published returns describe the same market; and how many were left out."""
    days = INDEXES.days_present(lake)
    if not len(days):
        raise FileNotFoundError("benchmarks/indexes is empty: materialize the benchmarks layer first")
    # the whole history: through the lake's history cache (a nightly run adds one day to years)
    values = INDEXES.read(lake, days[0], days[-1], ["date", "index", "value"], reuse=True)
    idx = layer_table("validated", "index_levels").read(lake, days[0], days[-1], ["date", "index", "provenance"],
                                                         reuse=True)
    spx_real = (idx["index"] == "SPX") & provenance.is_real(idx["provenance"])
    real = pd.DatetimeIndex(pd.to_datetime(idx.loc[spx_real, "date"]))
    keep = pd.DatetimeIndex(pd.to_datetime(values["date"])).isin(real)
    return values[keep].reset_index(drop=True), int((~keep).sum())


@dg.asset(key=COMPARISON.key, deps=[INDEXES.key], group_name="benchmarks", kinds={"parquet"},
          description="The replicated indexes' calendar-year returns (and CNDR over 2007-06-29..2009-06-30) against "
                      "Cboe's published ones, over every full year the lake holds on the real SPX (a synthetic "
                      "market is not compared): error in points, in- / out-of-sample, tolerance (plotted by "
                      "benchmarks/comparison_chart).")
def benchmark_comparison(lake: LakeResource) -> dg.MaterializeResult:
    values, not_real = _held_values(lake.lake)
    table = bm.compare_to_published(values)
    lake.lake.write_table("benchmarks", "comparison", table)
    meta = {f"{r['index']}_{r['period']}_error_pts": round(float(r["error_pts"]), 2) for _, r in table.iterrows()}
    return dg.MaterializeResult(metadata={
        **meta, "rows_not_on_real_spx": not_real, "comparison": dg.MetadataValue.md(table_md(table))})


# The figure is drawn after the answer it illustrates: the verdict reads the comparison's table, not
# its plot, and in a run that makes both (the nightly's) Dagster's step priority puts the plot after
# every step that is ready beside it, so the verdict does not wait on matplotlib (~1.5 s in a fresh
# process: its import, the figure, the PNG).
@dg.asset(key=COMPARISON_CHART.key, deps=[COMPARISON.key], group_name="benchmarks", kinds={"png"},
          op_tags={"dagster/priority": "-1"},
          description="benchmarks/comparison plotted: each replicated index-year's return beside Cboe's published "
                      "one (hatched: out of sample), the replicated values below.")
def comparison_chart(lake: LakeResource) -> dg.MaterializeResult:
    table = lake.lake.read_table("benchmarks", "comparison")
    values, _ = _held_values(lake.lake)
    png = bm.comparison_png(table, values, "replicated on the lake's chains vs Cboe published")
    where = lake.lake.write_document(COMPARISON_CHART.layer, COMPARISON_CHART.name, "comparison.png", png)
    return dg.MaterializeResult(metadata={
        "path": str(where),
        "plot": dg.MetadataValue.md(f"![benchmarks](data:image/png;base64,{base64.b64encode(png).decode()})")})


def tolerance_failures(table: pd.DataFrame, samples: tuple[str, ...] = ("in", "out")) -> list[RuleFailure]:
    """Out-of-sample rows beyond their tolerance; in-sample mean absolute error per index above
    `benchmarks.TOLERANCE_PTS['in_sample_mae']` (each only when its sample is in `samples`)."""
    failures = []
    out = table[(table["sample"] == "out") & ("out" in samples)]
    off = (out["error_pts"].abs() > out["tolerance_pts"]).to_numpy()
    if off.any():
        named = "; ".join(f"{r['index']} {r['period']} {r['error_pts']:+.2f} pts (tolerance {r['tolerance_pts']:g})"
                          for _, r in out[off].iterrows())
        why = f"replicated off the published return beyond tolerance: {named}"
        failures.append(RuleFailure.from_mask("within_tolerance", "error_pts", why, out, off))
    ins = table[(table["sample"] == "in") & ("in" in samples)]
    mae = ins.assign(a=ins["error_pts"].abs()).groupby("index")["a"].mean()
    over = mae[mae > bm.TOLERANCE_PTS["in_sample_mae"]]
    for name, v in over.items():
        limit = bm.TOLERANCE_PTS["in_sample_mae"]
        failures.append(RuleFailure("in_sample_mae", "error_pts", f"{name} in-sample mean absolute error "
                                    f"{v:.2f} pts > {limit}", int((ins["index"] == name).sum())))
    return failures


@dg.asset_check(asset=COMPARISON.key, name="benchmark_tolerance", blocking=False,
                description="each replicated index-year within its tolerance of Cboe's published return (out-of-"
                            "sample: 4 pts CNDR, 5 PUT / BXM, 5 for CNDR 2007-06..2009-06; in-sample mean absolute "
                            "error <= 2 pts); fails, naming the index-years, when the model chains leave it")
def benchmark_tolerance(lake: LakeResource) -> dg.AssetCheckResult:
    table = lake.lake.read_table("benchmarks", "comparison")
    note = "" if len(table) else ("nothing to compare: the lake holds no full calendar year (or published window) "
                                  "on the real SPX")
    return check_result(CheckReport(COMPARISON.label, len(table), tolerance_failures(table)), note=note)


def calibration_report() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(comparison rows over 2004-2014 on the replay's real paths with the calibrated chains,
    the replicated values), the same computation as bench/benchmarks.py. A pure function of the
    shipped data and `chain_model.CALIBRATED`: computed once per process (~4 s)."""
    table, values = _calibration_report(cm.CALIBRATED)
    return table.copy(), values.copy()


@lru_cache(maxsize=2)
def _calibration_report(params: cm.ChainParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    from alvh_pipeline.sources import replay  # the report is about the replay's chain model

    values = cc.replicate_years((2004, 2014), params, replay.benchmark_inputs, month_ends=True)
    return bm.compare_to_published(values), values


# What the calibration report's bytes can depend on besides this package's files: the libraries
# its numbers (numpy, pandas, scipy; arch ships the SPX / VIX history the replay uses) and its
# plot (matplotlib) come from, and the interpreter.
CALIBRATION_LIBRARIES = ("numpy", "pandas", "scipy", "pyarrow", "arch", "matplotlib")


@lru_cache(maxsize=1)
def calibration_inputs_sha256() -> str:
    """A digest of everything the calibration report is a function of: the calibrated parameters,
    every source and data file of the `alvh_pipeline` package (conservatively: any code change
    recomputes it once), the libraries' versions and Python's. ~8 MB hashed, ~30 ms."""
    h = hashlib.sha256(repr(cm.CALIBRATED).encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(f"\0{path.relative_to(package).as_posix()}\0".encode())
        h.update(path.read_bytes())
    for lib in CALIBRATION_LIBRARIES:
        h.update(f"\0{lib}=={importlib.metadata.version(lib)}".encode())
    h.update(f"\0python {sys.version}".encode())
    return h.hexdigest()


def _file_sha256(lake: Lake, name: str) -> str | None:
    try:
        return hashlib.sha256(lake.read_document("benchmarks", "calibration", name)).hexdigest()
    except FileNotFoundError:
        return None


def reusable_calibration(instance: dg.DagsterInstance | None, lake: Lake, inputs: str) -> dict | None:
    """The metadata of the last materialization of benchmarks/calibration when it was computed from
    the same inputs (`calibration_inputs_sha256`) and this lake still holds exactly the files it
    wrote (their sha256 in its metadata); else None. The report does not depend on the session, so
    the nightly run would otherwise recompute the same bytes (~4 s) every night."""
    event = instance.get_latest_materialization_event(CALIBRATION.key) if instance is not None else None
    mat = event.asset_materialization if event is not None else None
    if mat is None:
        return None
    meta = dict(mat.metadata)

    def text(key: str) -> str | None:
        value = meta.get(key)
        return getattr(value, "value", value) if value is not None else None

    if text("inputs_sha256") != inputs or text("lake") != lake.uri:
        return None
    if text("table_sha256") != _file_sha256(lake, "table.parquet") or \
            text("png_sha256") != _file_sha256(lake, "calibration.png"):
        return None
    return meta


@dg.asset(key=CALIBRATION.key, deps=[INDEXES.key], group_name="benchmarks", kinds={"parquet", "png"},
          description="The chain model's calibration (core/chain_model.py): CNDR / PUT / BXM replicated on the "
                      "replay's real SPX and VIX paths 2004-2014 with the calibrated chains, against Cboe's "
                      "published returns; fitted on 2004-06 and 2010-14 only, 2007-09 out-of-sample; the "
                      "parameters and their provenance. It does not depend on the lake's days: when its inputs "
                      "(parameters, this package's code and data, library versions: `inputs_sha256`) and the "
                      "files it wrote are unchanged since its last materialization, that one is re-recorded "
                      "(`computed_in_run` names the run that computed it) instead of recomputing the same bytes.")
def chain_calibration(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    inputs = calibration_inputs_sha256()
    previous = reusable_calibration(context.instance, lake.lake, inputs)
    if previous is not None:
        return dg.MaterializeResult(metadata=previous)
    table, values = calibration_report()
    lake.lake.write_table("benchmarks", "calibration", table)
    png = bm.comparison_png(table, values, "chain model calibration: in-sample 2004-06, 2010-14; hatched = out")
    lake.lake.write_document("benchmarks", "calibration", "calibration.png", png)
    ins = table[table["sample"] == "in"]
    mae = ins.assign(a=ins["error_pts"].abs()).groupby("index")["a"].mean()
    params = pd.DataFrame([{"parameter": f, "value": getattr(cm.CALIBRATED, f),
                            "provenance": cm.PARAMETER_PROVENANCE[f]} for f in cm.PARAMETER_PROVENANCE])
    return dg.MaterializeResult(metadata={
        **{f"{k}_in_sample_mae_pts": round(float(v), 2) for k, v in mae.items()},
        **{f"{r['index']}_{r['period']}_error_pts": round(float(r["error_pts"]), 2)
           for _, r in table[table["sample"] == "out"].iterrows()},
        "fit": dg.MetadataValue.md(table_md(table)), "parameters": dg.MetadataValue.md(table_md(params)),
        "plot": dg.MetadataValue.md(f"![calibration](data:image/png;base64,{base64.b64encode(png).decode()})"),
        "inputs_sha256": inputs, "lake": lake.lake.uri, "computed_in_run": context.run_id,
        "table_sha256": _file_sha256(lake.lake, "table.parquet"), "png_sha256": hashlib.sha256(png).hexdigest()})


@dg.asset_check(asset=CALIBRATION.key, name="calibration_fit", blocking=False,
                description="the chain model still fits its calibration years: in-sample mean absolute error <= 2 "
                            "pts per index (fails when a chain parameter is changed without a refit); the out-of-"
                            "sample years are reported in the asset, judged by benchmark_tolerance where a lake holds "
                            "them")
def calibration_fit(lake: LakeResource) -> dg.AssetCheckResult:
    table = lake.lake.read_table("benchmarks", "calibration")
    failures = tolerance_failures(table, samples=("in",))
    if not (table["sample"] == "in").any():
        failures.append(RuleFailure("in_sample_present", "sample", "no in-sample year replicated", len(table)))
    return check_result(CheckReport(CALIBRATION.label, len(table), failures))


def fit_label(lake: Lake) -> str:
    """How far the model option chains can be trusted, for the verdict's provenance: e.g. "model
    calibrated (CNDR 2008 error -1.0 pts, PUT 2008 error -6.5 pts, BXM 2008 error +2.0 pts;
    outside tolerance: PUT; this lake)"; from the calibration report (replay 2004-14) when the
    lake's own years miss 2008 (the crisis every stress window's claim leans on)."""
    def errors(table: pd.DataFrame) -> str:
        rows = table[table["period"] == "2008"]
        text = ", ".join(f"{r['index']} 2008 error {r['error_pts']:+.1f} pts" for _, r in rows.iterrows())
        off = rows[(rows["sample"] == "out") & (rows["error_pts"].abs() > rows["tolerance_pts"])]
        return text + (f"; outside tolerance: {', '.join(off['index'])}" if len(off) else "") if text else ""

    for name, where in (("comparison", "this lake"), ("calibration", "replay 2004-14")):
        try:
            text = errors(lake.read_table("benchmarks", name))
        except (FileNotFoundError, OSError):
            continue
        if text:
            return f"model calibrated ({text}; {where})"
    return "model calibrated (benchmark fit not materialized)"


assets = [benchmark_indexes, benchmark_comparison, comparison_chart, chain_calibration]
checks = [benchmark_check, benchmark_tolerance, calibration_fit]
inputs = {INDEXES.label: INPUTS}  # for `layers.table_plan`
