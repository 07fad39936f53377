"""signals/statarb and signals/regime, each with a blocking check."""

import dagster as dg
import numpy as np
import pandas as pd

from alvh_pipeline.assets.features import partition_dates, problems_result, read_days, write_days
from alvh_pipeline.core import signal_sets
from alvh_pipeline.core import walk_forward as wf
from alvh_pipeline.core.calendar import all_sessions, window_start
from alvh_pipeline.core.macro_regime import REGIME_LABELS
from alvh_pipeline.core.pairs import close_panel
from alvh_pipeline.core.statarb_signal import SignalParams
from alvh_pipeline.lake import Lake
from alvh_pipeline.partitions import backfill_policy, trading_days
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import CONTRACTS

STATARB_KEY = dg.AssetKey(["signals", "statarb"])
REGIME_KEY = dg.AssetKey(["signals", "regime"])
PARAMS = SignalParams()


def _history_start(dates: pd.DatetimeIndex) -> pd.Timestamp:
    """Earliest pair-feature day any signal day of the run reads: the training window before the
    first refit in force."""
    first_refit = wf.refit_dates(all_sessions())
    first_refit = first_refit[first_refit <= dates[0]][-1]
    return window_start(first_refit, signal_sets.TRAIN_WINDOW)


def required_feature_days(dates: pd.DatetimeIndex) -> dict[str, pd.DatetimeIndex]:
    """Feature partitions the statarb signals of `dates` read: the training window of pair
    features before the first refit, and a year of vol-surface history before the first day."""
    s = all_sessions()
    train = s[(s >= _history_start(dates)) & (s <= dates[-1])]
    curv = s[(s >= window_start(dates[0], signal_sets.CURVATURE_WINDOW)) & (s <= dates[-1])]
    return {"pairs": train, "pair_inputs": train, "term_structure": train, "vol_surface": curv}


def signal_history_start(start) -> pd.Timestamp:
    """First feature day the signals of a run starting at `start` need."""
    return min(d[0] for d in required_feature_days(pd.DatetimeIndex([pd.Timestamp(start)])).values())


def missing_feature_days(lake: Lake, dates: pd.DatetimeIndex) -> list[str]:
    problems = []
    for name, need in required_feature_days(dates).items():
        have = pd.DatetimeIndex(pd.to_datetime(lake.partitions("features", name)))
        gap = need.difference(have)
        if len(gap):
            problems.append(f"features/{name} missing for {len(gap)} of the {len(need)} sessions the signals read "
                            f"({gap[0].date()}..{gap[-1].date()}): materialize features over that range first")
    return problems


def load_statarb_inputs(lake: Lake, dates: pd.DatetimeIndex):
    need = required_feature_days(dates)
    start = need["pairs"][0]
    pairs = lake.read_range("features", "pairs", start, dates[-1])
    pair_inputs = lake.read_range("features", "pair_inputs", start, dates[-1])
    vol = lake.read_range("features", "vol_surface", min(start, need["vol_surface"][0]), dates[-1])
    term = lake.read_range("features", "term_structure", start, dates[-1])
    bars = lake.read_range("validated", "equity_bars", start, dates[-1], columns=["date", "symbol", "sector", "close"],
                           schema=CONTRACTS["equity_bars"].schema)
    closes, _ = close_panel(bars)
    return signal_sets.join_inputs(pairs, pair_inputs, vol, term), closes


def _reports_markdown(reports: list[wf.RefitReport]) -> str:
    rows = ["| refit | n_train | train base rate | n_oos | OOS AUC | OOS Brier |", "|---|---|---|---|---|---|"]
    for r in reports:
        rows.append(f"| {r.refit_date.date()} | {r.n_train} | {r.train_positive_rate:.3f} | {r.n_oos} | "
                    f"{r.oos_auc:.3f} | {r.oos_brier:.3f} |")
    return "\n".join(rows)


@dg.asset(key=STATARB_KEY, partitions_def=trading_days, backfill_policy=backfill_policy, group_name="signals",
          kinds={"parquet", "sklearn"},
          deps=[dg.AssetKey(["features", n]) for n in ("pairs", "pair_inputs", "vol_surface", "term_structure")]
          + [dg.AssetKey(["validated", "equity_bars"])],
          description="Per day and candidate pair: entry / exit / stop and direction where >= 3 independent inputs "
                      "agree (cointegration z, P/CF dispersion, skew curvature); conviction from a walk-forward "
                      "logistic model of reversion (purged, embargoed, monthly refits).")
def statarb_signals(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    dates = partition_dates(context)
    history, closes = load_statarb_inputs(lake.lake, dates)
    out, reports = signal_sets.statarb_signals(history, closes, dates, all_sessions(), PARAMS)
    rows = write_days(lake.lake, "signals", "statarb", out, dates, ("date", "symbol_y", "symbol_x"))
    aucs = [r.oos_auc for r in reports if np.isfinite(r.oos_auc)]
    calib = {str(r.refit_date.date()): r.calibration for r in reports if r.calibration}
    return dg.MaterializeResult(metadata={
        "rows": rows, "partitions": len(dates),
        "entries": int((out["action"] == "entry").sum()),
        "mean_oos_auc": float(np.mean(aucs)) if aucs else float("nan"),
        "refits": dg.MetadataValue.md(_reports_markdown(reports)),
        "calibration": dg.MetadataValue.json(calib),
        "path": str(lake.lake.table_dir("signals", "statarb")),
    })


def statarb_problems(frame: pd.DataFrame, dates: pd.DatetimeIndex, params: SignalParams = PARAMS,
                     missing_history: list[str] | None = None) -> list[str]:
    problems = list(missing_history or [])
    have = set(pd.to_datetime(frame["date"])) if len(frame) else set()
    missing = [d.strftime("%Y-%m-%d") for d in dates if d not in have]
    if missing:
        problems.append(f"no signal rows for {len(missing)} day(s): {', '.join(missing[:5])}")
    if not len(frame):
        return problems
    if not np.isfinite(frame["zscore"].to_numpy(float)).all():
        problems.append(f"{int((~np.isfinite(frame['zscore'].to_numpy(float))).sum())} non-finite z-scores")
    if not frame["direction"].isin([-1, 0, 1]).all():
        problems.append("direction outside {-1, 0, 1}")
    conv = frame["conviction"].to_numpy(float)
    if not ((conv >= 0) & (conv <= 1)).all():
        problems.append(f"{int(((conv < 0) | (conv > 1) | np.isnan(conv)).sum())} convictions outside [0, 1]")
    broken = ~frame["selected"].astype(bool) | (frame["pvalue"] > params.broken_p)
    n = int((broken & (frame["direction"] != 0)).sum())
    if n:
        problems.append(f"{n} signals on pairs whose cointegration broke")
    weak = int(((frame["direction"] != 0) & ~(frame["vote_cointegration"] & frame["vote_pcf"]
                                              & frame["vote_skew"])).sum())
    if weak:
        problems.append(f"{weak} signals without all three independent inputs agreeing")
    return problems


@dg.asset_check(asset=STATARB_KEY, name="signal_check", blocking=True, partitions_def=trading_days,
                description="the feature history the signals read is complete, z finite, direction in {-1,0,1}, "
                            "conviction in [0,1], no signal on a broken pair, every signal backed by three agreeing "
                            "inputs")
def statarb_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    dates = partition_dates(context)
    problems = statarb_problems(read_days(lake.lake, "signals", "statarb", dates), dates,
                                missing_history=missing_feature_days(lake.lake, dates))
    return problems_result(problems, "signals/statarb: ")


@dg.asset(key=REGIME_KEY, partitions_def=trading_days, backfill_policy=backfill_policy, group_name="signals",
          kinds={"parquet"},
          deps=[dg.AssetKey(["features", n]) for n in ("macro_regime", "term_structure", "liquidity")],
          description="The hedge's daily state: calm / elevated / stressed regime, term structure, event proximity, "
                      "liquidity filter inputs.")
def regime_signal(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    dates = partition_dates(context)
    lk = lake.lake
    out = signal_sets.regime_signals(read_days(lk, "features", "macro_regime", dates),
                                     read_days(lk, "features", "term_structure", dates),
                                     read_days(lk, "features", "liquidity", dates))
    rows = write_days(lk, "signals", "regime", out, dates, ("date",))
    counts = out["regime"].value_counts().to_dict()
    return dg.MaterializeResult(metadata={"rows": rows, "regimes": dg.MetadataValue.json(counts)})


@dg.asset_check(asset=REGIME_KEY, name="regime_check", blocking=True, partitions_def=trading_days,
                description="one row per day, regime in calm/elevated/stressed, VIX and term structure present")
def regime_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    dates = partition_dates(context)
    f = read_days(lake.lake, "signals", "regime", dates)
    problems = []
    if len(f) != len(dates):
        problems.append(f"{len(f)} rows for {len(dates)} days")
    if not f["regime"].isin(REGIME_LABELS).all():
        problems.append(f"{int((~f['regime'].isin(REGIME_LABELS)).sum())} days without a valid regime")
    for col in ("vix", "vx1", "vx2"):
        bad = int((~np.isfinite(f[col].to_numpy(float))).sum())
        if bad:
            problems.append(f"{bad} days with non-finite {col}")
    return problems_result(problems, "signals/regime: ")


signal_assets = [statarb_signals, regime_signal]
signal_checks = [statarb_check, regime_check]
