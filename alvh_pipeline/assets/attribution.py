"""attribution/*: the daily P&L by leg (partitioned by day), then four reports over everything the
books hold (the books are one contiguous history from their inception): performance per mode,
stress windows and the synthetic shock, the verdict (steward vs promoter, a sentence per claim;
a blocking check), and the tearsheet (PNG + HTML in the lake, shown in the UI)."""

import base64

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from alvh_pipeline.assets import benchmarks, sweep
from alvh_pipeline.assets._shell import check_result, input_keys, layer_table, partition_dates, table_md
from alvh_pipeline.core import attribution as at
from alvh_pipeline.core import books as engine
from alvh_pipeline.core import metrics, stress, tearsheet, verdict
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.check_report import CheckReport, RuleFailure, finite_columns, missing_days, unique_keys
from alvh_pipeline.core.inputs import Input, lookback
from alvh_pipeline.lake import Lake
from alvh_pipeline.partitions import DAY_LOCAL, trading_days
from alvh_pipeline.resources import LakeResource, StrategyConfig

PREVIOUS = lookback(1)  # the books of the session before: yesterday's legs and equity
INPUTS = tuple(Input("books", b, PREVIOUS) for b in (*engine.BOOKS, "account")) + (
    Input("books", "trades"), Input("validated", "index_levels", PREVIOUS))  # spot VIX: the VX futures' roll
DAILY = layer_table("attribution", "daily_pnl")


def _books(lake: Lake, start, end) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    legs = pd.concat([layer_table("books", b).read(lake, start, end) for b in engine.BOOKS], ignore_index=True)
    trades = layer_table("books", "trades").read(lake, start, end)
    return legs, trades, layer_table("books", "account").read(lake, start, end)


def _spot_vix(lake: Lake, start, end) -> pd.Series:
    """VIX closes by date (validated/index_levels)."""
    idx = layer_table("validated", "index_levels").read(lake, start, end, columns=["date", "index", "close"])
    vix = idx[idx["index"] == "VIX"]
    return pd.Series(vix["close"].to_numpy(float), index=pd.DatetimeIndex(pd.to_datetime(vix["date"])))


@dg.asset(key=DAILY.key, deps=input_keys(INPUTS), partitions_def=trading_days, backfill_policy=DAY_LOCAL,
          group_name="attribution", kinds={"parquet"},
          description="Per session and mode: P&L by leg (condor, stat-arb, L1, L2, L3, synthetic) split into delta / "
                      "gamma / vega / theta / residual and trading, costs paid, interest, margin used, margin calls "
                      "and their forced-exit cost, equity, the open condors' break-even move; Σ legs + interest = "
                      "the equity change (residual reported).")
def daily_pnl(context: dg.AssetExecutionContext, lake: LakeResource, strategy: StrategyConfig) -> dg.MaterializeResult:
    dates = partition_dates(context)
    s = all_sessions()
    prev = s[s < dates[0]][-1]
    legs, trades, account = _books(lake.lake, prev, dates[-1])
    d = pd.to_datetime(legs["date"])
    a = pd.to_datetime(account["date"])
    before_legs, before_acc = legs[d == prev], account[a == prev]
    out = at.daily_pnl(legs[d > prev], trades[pd.to_datetime(trades["date"]) > prev], account[a > prev],
                       initial_legs=before_legs if len(before_acc) else None,
                       initial_account=before_acc if len(before_acc) else None,
                       initial_equity=strategy.account_equity, spot_vix=_spot_vix(lake.lake, prev, dates[-1]))
    rows = DAILY.write_days(lake.lake, out, dates, ("date", "mode"))
    return dg.MaterializeResult(metadata={
        "rows": rows, "partitions": len(dates),
        "max_abs_attribution_residual": float(np.abs(out["attribution_residual"]).max()) if len(out) else 0.0,
        "path": str(DAILY.path(lake.lake))})


@dg.asset_check(asset=DAILY.key, name="attribution_check", blocking=True, partitions_def=trading_days,
                description="every mode every day; Σ legs + interest = equity change to 1e-6 USD; finite figures")
def attribution_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    dates = partition_dates(context)
    f = DAILY.read_days(lake.lake, dates)
    failures = missing_days("attribution/daily_pnl", f, dates) + unique_keys(f, ("date", "mode"))
    failures += finite_columns(f, ("equity", "equity_change", "pnl_legs", "interest", "margin_used"))
    if len(f):
        off = np.abs(f["attribution_residual"].to_numpy(float)) > 1e-6
        if off.any():
            failures.append(RuleFailure.from_mask("adds_up", "attribution_residual",
                                                  "Σ legs + interest differs from the equity change", f, off))
    return check_result(CheckReport(DAILY.label, len(f), failures))


# ---- reports over the whole materialized history ---------------------------------------------

# The reports each read the whole history of daily_pnl and books/account (~1,000 daily files,
# ~2 s, all of it per-file Parquet overhead); performance, stress and the tearsheet run one after
# the other in a run's process. The last history read is kept for the next report as long as no
# file of either table changed: the key lists every file's path, size and modification time, and
# the lake replaces a file on every write (a new mtime; on S3 a new LastModified, whole seconds).
_HISTORY: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}


def _table_files(lake: Lake, layer_name: str, table: str) -> tuple:
    """(path, size, mtime) of every file under the table, from one listing."""
    base = f"{lake.uri.removeprefix('s3://')}/{layer_name}/{table}"
    found = lake.filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return tuple(sorted((f.path, f.size, f.mtime_ns) for f in found if f.type == pafs.FileType.File))


def _history(lake: Lake) -> tuple[pd.DataFrame, pd.DataFrame]:
    """daily_pnl joined with the account's sizing columns, over every day attribution holds, and
    the account over those days (copies: a report may change its frames)."""
    key = (lake.uri, _table_files(lake, "attribution", "daily_pnl"), _table_files(lake, "books", "account"))
    if key not in _HISTORY:
        _HISTORY.clear()  # one history at a time: the last one read
        _HISTORY[key] = _read_history(lake)
    joined, acc = _HISTORY[key]
    return joined.copy(), acc.copy()


# The account columns the reports read: the sizing join (`stress.SIZING_COLUMNS`), the most exposed
# day (condor_max_loss), the shock (equity, margin_requirement, margin_vx, vx_delta_dollars,
# cap_dollars, provenance) and the tearsheet (equity, margin_requirement, margin_call). A file's
# cost is per column read: 12 of the ~46 columns take half the time (~0.5 s of ~1 s).
HISTORY_ACCOUNT_COLUMNS = frozenset((*stress.SIZING_COLUMNS, "condor_max_loss", "equity", "margin_requirement",
                                     "margin_call", "margin_vx", "provenance"))


def _read_history(lake: Lake) -> tuple[pd.DataFrame, pd.DataFrame]:
    days = DAILY.days_present(lake)
    if not len(days):
        raise FileNotFoundError("attribution/daily_pnl is empty: materialize books and attribution first")
    daily = DAILY.read(lake, days[0], days[-1], reuse=True)  # the whole history: through the lake's cache
    account = layer_table("books", "account")
    # in the order of the first day's file, whose columns the range read takes; margin_vx only where
    # the books have a VX margin component
    try:
        columns = [c for c in lake.read_partition("books", "account", days[0]).columns
                   if c in HISTORY_ACCOUNT_COLUMNS]
    except FileNotFoundError:  # no account on attribution's first day: the range read says what is missing
        columns = None
    acc = account.read(lake, days[0], days[-1], columns, reuse=True)
    joined = stress.with_sizing(daily, acc)
    return joined, acc


def _returns(daily: pd.DataFrame, mode: str) -> pd.Series:
    g = daily[daily["mode"] == mode].assign(date=lambda x: pd.to_datetime(x["date"])).sort_values("date")
    prev = g["equity"].to_numpy() - g["equity_change"].to_numpy()
    return pd.Series(g["equity_change"].to_numpy() / prev, index=pd.DatetimeIndex(g["date"]), name=mode)


def performance_table(daily: pd.DataFrame, rf: pd.Series) -> pd.DataFrame:
    rows = []
    for mode in sorted(daily["mode"].unique()):
        r = _returns(daily, mode)
        g = daily[daily["mode"] == mode].sort_values("date")
        perf = metrics.performance(r, rf_annual=rf.reindex(r.index).ffill().bfill() if len(rf) else 0.0)
        start_equity = float(g["equity"].iloc[0] - g["equity_change"].iloc[0])
        first = pd.Timestamp(g["date"].iloc[0]) - pd.Timedelta(days=1)
        perf["irr"] = metrics.xirr([first, pd.Timestamp(g["date"].iloc[-1])],
                                   [-start_equity, float(g["equity"].iloc[-1])])
        # the hedge's carry, each part on its own too: costs paid, the VX futures' roll, option decay
        equity = g.set_index(pd.to_datetime(g["date"]))["equity"]
        parts = {"costs": float(g["hedge_costs"].sum()), "roll": -float(g["hedge_roll_pnl"].sum()),
                 "decay": -float(g["hedge_theta_pnl"].sum())}
        perf["hedge_cost_of_carry"] = metrics.hedge_cost_of_carry(parts["costs"], parts["roll"], parts["decay"],
                                                                  equity)
        for name, usd in parts.items():
            perf[f"hedge_carry_{name}"] = metrics.hedge_cost_of_carry(usd, 0.0, 0.0, equity)
        perf["margin_calls"] = int(g["margin_calls"].sum())
        perf["mode"] = mode
        perf["provenance"] = "; ".join(sorted(set(g["provenance"].astype(str))))
        rows.append(perf)
    return pd.DataFrame(rows)


@dg.asset(key=layer_table("attribution", "performance").key, deps=[DAILY.key, layer_table("validated", "rates").key],
          group_name="attribution", kinds={"parquet"},
          description="Per mode over every day the books hold: total / annualized return, Sharpe, Sortino, Calmar, "
                      "max drawdown and dates, VaR / CVaR 95 / 99 (historical and Gaussian), win rate (= quantstats "
                      "0.0.86), IRR of the dated flows (= pyxirr), the hedge's cost of carry per year (costs + VX "
                      "roll + option decay, and each part).")
def performance(lake: LakeResource) -> dg.MaterializeResult:
    daily, _ = _history(lake.lake)
    d = pd.to_datetime(daily["date"])
    rates = layer_table("validated", "rates").read(lake.lake, d.min(), d.max(), columns=["date", "tbill_3m"],
                                                   reuse=True)  # the whole history, as `_history`
    rf = rates.set_index(pd.DatetimeIndex(pd.to_datetime(rates["date"])))["tbill_3m"] if len(rates) else pd.Series()
    table = performance_table(daily, rf)
    lake.lake.write_table("attribution", "performance", table)
    meta = {f"{r['mode']}_{k}": float(r[k]) for _, r in table.iterrows()
            for k in ("sharpe", "max_drawdown", "irr", "cagr") if pd.notna(r[k])}
    return dg.MaterializeResult(metadata={**meta, "table_md": dg.MetadataValue.md(table_md(table))})


@dg.asset(key=layer_table("attribution", "stress").key, deps=[DAILY.key, layer_table("books", "account").key],
          group_name="attribution", kinds={"parquet"},
          description="Per stress window and mode, and over the full replay: max drawdown from a peak in the window "
                      "to its trough (followed past the window's end until the peak is regained), worst day, margin "
                      "calls (and those the VIX-futures leg alone caused), hedge payoff / condor loss, sizing-cap "
                      "use, sessions holding VX futures, IRR, provenance; plus the synthetic shock (VIX +30 in 5 "
                      "sessions, backwardation, SPX -15 %) on the books' most exposed day.")
def stress_windows(lake: LakeResource) -> dg.MaterializeResult:
    daily, acc = _history(lake.lake)
    sessions = all_sessions()
    table = stress.stress_table(daily, sessions)
    # the shock hits the books on their most exposed day (largest open condor max loss), not on a
    # last day that may happen to be flat between two condor cycles
    exposure = acc.groupby(pd.to_datetime(acc["date"]))["condor_max_loss"].sum()
    day = exposure.idxmax() if len(exposure) and exposure.max() > 0 else pd.to_datetime(acc["date"]).max()
    legs = pd.concat([layer_table("books", b).read(lake.lake, day, day) for b in engine.BOOKS], ignore_index=True)
    shock = stress.shock_scenario(legs, acc[pd.to_datetime(acc["date"]) == day])
    lake.lake.write_table("attribution", "stress", table)
    lake.lake.write_table("attribution", "shock", shock)
    return dg.MaterializeResult(metadata={
        "windows_evaluated": int(table["evaluated"].sum()) if len(table) else 0,
        "stress_md": dg.MetadataValue.md(table_md(table)),
        "shock_md": dg.MetadataValue.md(table_md(shock))})


@dg.asset(key=layer_table("attribution", "verdict").key,
          deps=[layer_table("attribution", "stress").key, layer_table("attribution", "performance").key,
                benchmarks.COMPARISON.key, benchmarks.CALIBRATION.key],
          group_name="attribution", kinds={"parquet"},
          description="Steward vs promoter per stress window and over the full replay (max drawdown peak → trough, "
                      "margin breached and how often, IRR) and a plain sentence per claim of the method: holds / "
                      "does not hold / cannot be tested (and why), with its numbers and the data's provenance.")
def verdict_asset(lake: LakeResource, strategy: StrategyConfig) -> dg.MaterializeResult:
    table, claims_frame = build_verdict(lake.lake, strategy.fill_timing)
    lake.lake.write_table("attribution", "verdict", table)
    lake.lake.write_table("attribution", "claims", claims_frame)
    md = verdict.verdict_markdown(table, claims_frame)
    lake.lake.write_document("attribution", "verdict", "verdict.md", md.encode())
    return dg.MaterializeResult(metadata={"verdict": dg.MetadataValue.md(md),
                                          **verdict.claim_metadata(claims_frame)})


def build_verdict(lake: Lake, fill_timing: str = "close") -> tuple[pd.DataFrame, pd.DataFrame]:
    stress_t = lake.read_table("attribution", "stress")
    shock = lake.read_table("attribution", "shock")
    perf = lake.read_table("attribution", "performance")
    table = verdict.verdict_table(stress_t, shock)
    table["provenance"] = verdict.label_provenance(table["provenance"], benchmarks.fit_label(lake), fill_timing)
    irr = {r["mode"]: float(r["irr"]) for _, r in perf.iterrows()}
    return table, verdict.claims(table, irr, sweep.robustness_for_verdict(lake))


@dg.asset_check(asset=layer_table("attribution", "verdict").key, name="verdict_check", blocking=True,
                description="every figure the verdict reads is present for the windows it evaluates, every row "
                            "names its data's provenance, every claim's status is holds / does not hold / cannot be "
                            "tested / reported, and a claim that cannot be tested says why")
def verdict_check(lake: LakeResource) -> dg.AssetCheckResult:
    table = lake.lake.read_table("attribution", "verdict")
    claims_frame = lake.lake.read_table("attribution", "claims")
    failures = []
    ev = table[table["evaluated"].astype(bool)]
    missing = ev[["max_drawdown", "margin_calls"]].isna().any(axis=1).to_numpy()
    if missing.any():
        failures.append(RuleFailure.from_mask("figures_present", "max_drawdown,margin_calls",
                                              "an evaluated window without its figures", ev, missing))
    unknown = ~table["provenance"].astype(str).str.strip().astype(bool) | table["provenance"].isna()
    unknown |= table["provenance"].astype(str).str.contains("unknown")
    if unknown.any():
        failures.append(RuleFailure.from_mask("provenance_known", "provenance", "a row without provenance",
                                              table, unknown.to_numpy()))
    if claims_frame["provenance"].isna().any() or not len(claims_frame):
        failures.append(RuleFailure("claims_present", "claim", "claims missing or without provenance",
                                    len(claims_frame)))
    if len(claims_frame):
        status = claims_frame["status"].astype(str)
        unknown_status = ~status.isin(verdict.STATUSES).to_numpy()
        if unknown_status.any():
            failures.append(RuleFailure.from_mask("status_known", "status", f"a status outside {verdict.STATUSES}",
                                                  claims_frame, unknown_status))
        reason = claims_frame["reason"] if "reason" in claims_frame else pd.Series("", index=claims_frame.index)
        unexplained = (status.eq(verdict.CANNOT_BE_TESTED)
                       & ~reason.fillna("").astype(str).str.strip().astype(bool)).to_numpy()
        if unexplained.any():
            failures.append(RuleFailure.from_mask("untestable_says_why", "reason",
                                                  "a claim that cannot be tested without its reason",
                                                  claims_frame, unexplained))
    return check_result(CheckReport("attribution/verdict", len(table), failures))


@dg.asset(key=layer_table("attribution", "tearsheet").key,
          deps=[DAILY.key, layer_table("attribution", "verdict").key, layer_table("books", "alvh").key],
          group_name="attribution", kinds={"html", "png"},
          description="Equity by leg, drawdown, the hedge ladder's notional by layer, sizing-cap use, margin used vs "
                      "equity (PNG), and an HTML report with the metrics and the verdict, written to the lake.")
def tearsheet_asset(lake: LakeResource) -> dg.MaterializeResult:
    daily, acc = _history(lake.lake)
    d = pd.to_datetime(daily["date"])
    alvh_legs = layer_table("books", "alvh").read(lake.lake, d.min(), d.max())
    png = tearsheet.figure_png(daily, acc, alvh_legs)
    perf = lake.lake.read_table("attribution", "performance").set_index("mode")
    md = lake.lake.read_document("attribution", "verdict", "verdict.md").decode()  # as the verdict wrote it
    page = tearsheet.report_html(png, perf.select_dtypes("number").T, md,
                                 f"alvh_pipeline tearsheet {d.min().date()}..{d.max().date()}")
    png_path = lake.lake.write_document("attribution", "tearsheet", "tearsheet.png", png)
    html_path = lake.lake.write_document("attribution", "tearsheet", "tearsheet.html", page.encode())
    meta = {"preview": dg.MetadataValue.md(f"![tearsheet](data:image/png;base64,{base64.b64encode(png).decode()})"),
            "html": dg.MetadataValue.path(str(html_path)), "png": dg.MetadataValue.path(str(png_path)),
            "png_kib": round(len(png) / 1024, 1)}
    for mode, r in perf.iterrows():
        for k in ("sharpe", "max_drawdown", "irr", "margin_calls"):
            if pd.notna(r[k]):  # rounded as a trader reads it; attribution/performance keeps the float
                meta[f"{mode}_{k}"] = verdict.trader_figure(k, float(r[k]))
    return dg.MaterializeResult(metadata=meta)


assets = [daily_pnl, performance, stress_windows, verdict_asset, tearsheet_asset]
checks = [attribution_check, verdict_check]
inputs = {DAILY.label: INPUTS}  # for `layers.table_plan` (the reports read every day)
