"""books/*: the condor, stat-arb and hedge books of both modes, the account and the day's trades,
from one simulation (`core.books`) that starts from the state the lake holds for the day before
the run. Stateful: one run over the whole range (`BackfillPolicy.single_run()`), computed in order,
in chunks of sessions so a decade stays within memory. Gated by the sizing rule (blocking) and
per-book checks."""

from collections.abc import Iterator

import dagster as dg
import numpy as np
import pandas as pd

from alvh_pipeline.assets._shell import check_result, layer_table, partition_dates, read_inputs
from alvh_pipeline.core import book_checks
from alvh_pipeline.core import books as engine
from alvh_pipeline.core.calendar import all_sessions, window_start
from alvh_pipeline.core.check_report import CheckReport
from alvh_pipeline.core.inputs import Input, lookback
from alvh_pipeline.lake import Lake
from alvh_pipeline.partitions import STATEFUL, trading_days
from alvh_pipeline.resources import LakeResource, StrategyConfig
from alvh_pipeline.schemas import book_schema

CHUNK_SESSIONS = 126  # sessions of chains read and simulated at a time: bounded memory over a decade
TABLES = {  # name -> sort keys of its rows
    "condor": engine.LEG_SORT, "statarb": engine.LEG_SORT, "alvh": engine.LEG_SORT,
    "account": ("date", "mode"), "trades": engine.TRADE_SORT,
}
HISTORY = lookback(engine.HISTORY_SESSIONS)
INPUTS = (
    Input("validated", "spx_options"), Input("validated", "vix_options"),
    Input("validated", "vix_futures", HISTORY), Input("validated", "index_levels", HISTORY),
    Input("validated", "equity_bars", HISTORY, columns=("date", "symbol", "close", "bid", "ask", "provenance")),
    Input("validated", "rates"), Input("signals", "regime"), Input("signals", "statarb"),
    Input("features", "fundamentals", HISTORY, columns=("date", "symbol", "capm_beta_60d")),
)


class MissingStateError(RuntimeError):
    pass


# inputs of a few rows a day (equity bars: one per name) read once per run and cut per chunk: each
# read of a table costs about the same however few days it covers (the scan lists the table's
# partitions), and they are read with a look-back, so chunk by chunk they were most of the reading
RUN_WIDE = ("vix_futures", "index_levels", "rates", "regime", "fundamentals", "equity_bars")


def read_run(lake: Lake, dates: pd.DatetimeIndex) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """The RUN_WIDE inputs over the whole run, with each row's day."""
    frames = read_inputs(lake, [i for i in INPUTS if i.table in RUN_WIDE], dates)
    return {table: (frame, pd.to_datetime(frame["date"]).to_numpy("datetime64[D]")) for table, frame in frames.items()}


def read_chunk(lake: Lake, dates: pd.DatetimeIndex,
               run: dict[str, tuple[pd.DataFrame, np.ndarray]] | None = None) -> dict[str, pd.DataFrame]:
    """Every input over the chunk `dates` (from each one's first day): the rows a read of that range
    gives, in its order (by day, then file order), from `run` (`read_run`) for the tables it holds."""
    run = run or {}
    out = {}
    for i in INPUTS:
        first = i.first_day(dates)
        if i.table in run:
            frame, day = run[i.table]
            keep = (day >= first.to_datetime64()) & (day <= dates[-1].to_datetime64())
            out[i.table] = frame[keep].reset_index(drop=True)
        else:
            out[i.table] = layer_table(i.layer, i.table).read(lake, first, dates[-1], i.columns)
    out["vx_final_settlements"] = vx_final_settlements()
    return out


def vx_final_settlements() -> pd.DataFrame:
    """The published CFE final settlement values the project ships (expiry, settle); the books use
    them for the expiries whose futures the lake holds as real (`books.market_days`)."""
    from alvh_pipeline.sources.real_data import load_cfe_final_settlements

    return load_cfe_final_settlements()[["expiry", "settle"]]


def write_chunk(lake: Lake, name: str, frame: pd.DataFrame, dates: pd.DatetimeIndex) -> int:
    """A chunk of one books table, a file per day with the table's fixed schema."""
    return layer_table("books", name).write_days(lake, frame, dates, TABLES[name], book_schema(name, frame.columns))


def initial_states(lake: Lake, start: pd.Timestamp, cfg: engine.BookConfig) -> tuple[dict, str]:
    """The modes' state at the close of the session before `start`: from the lake, or flat when
    the lake holds no books before `start` (inception). A gap (books before, but not the day
    before) is refused: the state would be wrong."""
    account = layer_table("books", "account")
    before = account.days_present(lake, end=start - pd.Timedelta(days=1))  # the days held before `start`
    if not len(before):
        return {m: engine.fresh_state(m, cfg.account_equity) for m in cfg.modes}, f"inception on {start.date()}"
    s = all_sessions()
    prev = s[s < start][-1]
    if before[-1] != prev:
        raise MissingStateError(
            f"books: a run starting {start.date()} needs the books state of {prev.date()}, but the lake's books end "
            f"on {before[-1].date()}: materialize books from {(before[-1] + pd.Timedelta(days=1)).date()} (or from "
            f"an earlier day) through {prev.date()} first")
    acc = account.read(lake, window_start(prev, cfg.allocation_window + 5), prev)
    legs = pd.concat([layer_table("books", b).read(lake, prev, prev) for b in engine.BOOKS], ignore_index=True)
    states = {m: engine.state_from_lake(m, legs[legs["mode"] == m], acc[acc["mode"] == m], cfg) for m in cfg.modes}
    return states, f"continued from the books of {prev.date()}"


@dg.multi_asset(
    specs=[dg.AssetSpec(layer_table("books", name).key, group_name="books", kinds={"parquet"},
                        deps=[layer_table(i.layer, i.table).key for i in INPUTS], description=desc,
                        partitions_def=trading_days)
           for name, desc in (
               ("condor", "The SPX iron-condor program shared by both modes (Cboe CNDR rules by default, sized by "
                          "equity at risk per cycle), one row per leg, mode and day, marked at the close."),
               ("statarb", "Dollar-neutral stat-arb pairs from signals/statarb, one row per leg, mode and day."),
               ("alvh", "The hedge: the steward's ladder (L1 VIX calls, L2 VX calendars or their synthetic "
                        "twin from VIX options, L3 SPX put wings) and the promoter's static long VX future; one "
                        "row per leg, mode and day."),
               ("account", "Per mode and day: cash, equity, margin, margin calls, sleeve weights and P&L, "
                           "sizing-rule figures."),
               ("trades", "Every fill (at bid/ask, fees) and settlement of the books, per mode and day."))],
    partitions_def=trading_days, backfill_policy=STATEFUL, can_subset=False,
)
def books_simulation(context: dg.AssetExecutionContext, lake: LakeResource,
                     strategy: StrategyConfig) -> Iterator[dg.MaterializeResult]:
    dates = partition_dates(context)
    cfg = strategy.book_config()
    states, origin = initial_states(lake.lake, dates[0], cfg)
    counts = dict.fromkeys(TABLES, 0)
    run = read_run(lake.lake, dates)
    for start in range(0, len(dates), CHUNK_SESSIONS):  # in order: each chunk starts from the last one's state
        chunk = dates[start:start + CHUNK_SESSIONS]
        days = engine.market_days(read_chunk(lake.lake, chunk, run), chunk)
        states, legs, trades, account = engine.simulate(days, states, cfg)
        frames = {b: legs[legs["book"] == b] for b in engine.BOOKS}
        frames.update(account=account, trades=trades)
        with lake.lake.batch():  # the chunk's five tables published together: one sync, not one per table
            for name, frame in frames.items():
                counts[name] += write_chunk(lake.lake, name, frame, chunk)
    last = {m: s for m, s in states.items()}
    for name in TABLES:
        meta = {"rows": counts[name], "partitions": len(dates), "state": origin}
        if name == "account":
            meta.update({f"equity_{m}": float(s.cash + (engine.mark_value(s.legs).sum() if len(s.legs) else 0.0))
                         for m, s in last.items()})
        yield dg.MaterializeResult(asset_key=layer_table("books", name).key, metadata=meta)


@dg.asset_check(asset=layer_table("books", "alvh").key, name="sizing_rule", blocking=True,
                partitions_def=trading_days,
                additional_deps=[layer_table("books", "condor").key, layer_table("books", "account").key],
                description="every day, every mode: the ALVH ladder's NET VIX-futures delta dollars (|signed contracts "
                            "x beta to spot VIX| x $1,000 x stress move) <= cap x the condor program's notional risk "
                            "(kept between cycles)")
def sizing_rule(context: dg.AssetCheckExecutionContext, lake: LakeResource,
                strategy: StrategyConfig) -> dg.AssetCheckResult:
    dates = partition_dates(context)
    alvh = layer_table("books", "alvh").read_days(lake.lake, dates)
    condors = layer_table("books", "condor").read_days(lake.lake, dates)
    account = layer_table("books", "account").read_days(lake.lake, dates)
    failures = book_checks.sizing_rule_failures(alvh, condors, account, dates, strategy.hedge_cap,
                                                strategy.stress_move_vix_points)
    return check_result(CheckReport("books/alvh sizing rule", len(alvh), failures), cap=strategy.hedge_cap,
                        stress_move_vix_points=strategy.stress_move_vix_points)


def _book_check(name: str) -> dg.AssetChecksDefinition:
    table = layer_table("books", name)

    @dg.asset_check(asset=table.key, name="book_check", blocking=True, partitions_def=trading_days,
                    description="finite quantities and greeks, quoted marks inside bid/ask, nothing past expiry, "
                                "one row per leg")
    def check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        dates = partition_dates(context)
        frame = table.read_days(lake.lake, dates)
        return check_result(CheckReport(table.label, len(frame), book_checks.leg_problems(frame, dates, name)))

    return check


@dg.asset_check(asset=layer_table("books", "account").key, name="account_check", blocking=True,
                partitions_def=trading_days, description="one row per mode and day, finite cash, equity and margin")
def account_check(context: dg.AssetCheckExecutionContext, lake: LakeResource,
                  strategy: StrategyConfig) -> dg.AssetCheckResult:
    dates = partition_dates(context)
    frame = layer_table("books", "account").read_days(lake.lake, dates)
    return check_result(CheckReport("books/account", len(frame),
                                    book_checks.account_problems(frame, dates, strategy.modes)))


@dg.asset_check(asset=layer_table("books", "trades").key, name="trades_check", blocking=True,
                partitions_def=trading_days, description="fills at the touch (buys at the ask, sells at the bid), "
                                                         "costs not negative, finite cash flows")
def trades_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    dates = partition_dates(context)
    frame = layer_table("books", "trades").read_days(lake.lake, dates)
    return check_result(CheckReport("books/trades", len(frame), book_checks.trade_problems(frame, dates)))


assets = [books_simulation]
checks = [sizing_rule, account_check, trades_check, *(_book_check(b) for b in engine.BOOKS)]
inputs = {f"books/{name}": INPUTS for name in TABLES}  # one simulation writes every book (`layers.table_plan`)
