"""sweep/*: the answer over the assumptions that move it (issue 18). `sweep/scenario` is
partitioned by a static `scenario` dimension (`core.scenarios.DEFAULT_GRID`): each partition
re-runs the books and the attribution, over every session the lake's books hold, under one
configuration, from the same validated, feature and signal rows, and writes its account, daily
P&L, claims and outcome under `sweep/<table>/scenario=<name>/`. The UI shows each scenario's
status; a UI backfill (or `cli sweep`) spreads them over runs, and the Celery executor over
workers. `sweep/robustness` reads every scenario's outcome: a table and a heat-map, and one line
per claim that the verdict prints ("holds in k of n configurations; most sensitive to X").
Not part of `make run` (`make sweep`)."""


import io
import warnings
from dataclasses import replace

import dagster as dg
import pandas as pd

from alvh_pipeline.assets import books as books_assets
from alvh_pipeline.assets._shell import check_result, layer_table, table_md
from alvh_pipeline.core import attribution as at
from alvh_pipeline.core import books as engine
from alvh_pipeline.core import metrics, scenarios, stress, verdict
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.check_report import CheckReport, RuleFailure, finite_columns, unique_keys
from alvh_pipeline.lake import Lake
from alvh_pipeline.resources import LakeResource, StrategyConfig, condor_rules

SCENARIOS = dg.StaticPartitionsDefinition([s.name for s in scenarios.DEFAULT_GRID])
SCENARIO_KEY = dg.AssetKey(["sweep", "scenario"])
ROBUSTNESS_KEY = dg.AssetKey(["sweep", "robustness"])
RUN_SIZE = 8  # scenarios per run in a backfill: the inputs are read once per run, then shared


def scenario_config(base: engine.BookConfig, scenario: scenarios.Scenario) -> engine.BookConfig:
    return replace(base, condor_risk_per_cycle=scenario.condor_risk_per_cycle, hedge_cap=scenario.hedge_cap,
                   gross_limit=scenario.gross_limit, condor_rules=condor_rules(scenario.condor_exits),
                   fill_timing=scenario.fill_timing)


def books_range(lake: Lake) -> pd.DatetimeIndex:
    """The sessions the lake's books hold, from their inception (one contiguous history)."""
    days = layer_table("books", "account").days_present(lake)
    if not len(days):
        raise FileNotFoundError("sweep: the lake holds no books; materialize the lineage first (make run)")
    s = all_sessions()
    return s[(s >= days[0]) & (s <= days[-1])]


Market = list[tuple[list[engine.MarketDay], list[engine.DayQuotes]]]


def scenario_market(chunks: list[tuple[pd.DatetimeIndex, dict[str, pd.DataFrame]]],
                    scenario: scenarios.Scenario) -> Market:
    """The days and their quotes as `scenario` quotes them, chunk by chunk (shared by every scenario
    of the same market: `scenarios.market_key`)."""
    out = []
    for dates, frames in chunks:
        days = engine.market_days(scenarios.market_frames(frames, scenario), dates)
        out.append((days, [engine.DayQuotes(d) for d in days]))
    return out


def run_scenario(market: Market, spot_vix: pd.Series, scenario: scenarios.Scenario,
                 base: engine.BookConfig) -> dict[str, pd.DataFrame]:
    """The books from inception and their attribution under `scenario`, on its market."""
    cfg = scenario_config(base, scenario)
    states = {m: engine.fresh_state(m, cfg.account_equity) for m in cfg.modes}
    legs, trades, accounts = [], [], []
    for days, quotes in market:
        states, lg, tr, acc = engine.simulate(days, states, cfg, quotes)
        legs.append(lg)
        trades.append(tr)
        accounts.append(acc)
    legs_f, trades_f = pd.concat(legs, ignore_index=True), pd.concat(trades, ignore_index=True)
    account = pd.concat(accounts, ignore_index=True)
    daily = at.daily_pnl(legs_f, trades_f, account, initial_equity=cfg.account_equity, spot_vix=spot_vix)
    table = verdict.verdict_table(stress.stress_table(stress.with_sizing(daily, account), all_sessions()),
                                  pd.DataFrame())
    irr = {}
    for mode, g in daily.groupby("mode"):
        g = g.sort_values("date")
        first = pd.Timestamp(g["date"].iloc[0]) - pd.Timedelta(days=1)
        irr[mode] = metrics.xirr([first, pd.Timestamp(g["date"].iloc[-1])],
                                 [-cfg.account_equity, float(g["equity"].iloc[-1])])
    claim_rows = verdict.claims(table, irr)
    out = scenarios.outcome(scenario, table, claim_rows, irr)
    return {"account": account, "daily_pnl": daily, "claims": claim_rows, "stress": table,
            "outcome": pd.DataFrame([out])}


def run_scenarios(lake: Lake, names: list[str], base: engine.BookConfig,
                  on_done=lambda name, tables: None) -> None:
    """`names` over the lake's books range: the inputs read once, each market quoted once."""
    dates = books_range(lake)
    chunks = _read_inputs(lake, dates)
    spot_vix = _spot_vix(lake, dates)
    for group in scenarios.market_groups(names):
        market = scenario_market(chunks, scenarios.by_name(group[0]))
        for name in group:
            tables = run_scenario(market, spot_vix, scenarios.by_name(name), base)
            write_scenario(lake, name, tables)
            on_done(name, tables)


def _read_inputs(lake: Lake, dates: pd.DatetimeIndex) -> list[tuple[pd.DatetimeIndex, dict[str, pd.DataFrame]]]:
    run = books_assets.read_run(lake, dates)
    step = books_assets.CHUNK_SESSIONS
    return [(dates[i:i + step], books_assets.read_chunk(lake, dates[i:i + step], run))
            for i in range(0, len(dates), step)]


def _spot_vix(lake: Lake, dates: pd.DatetimeIndex) -> pd.Series:
    idx = layer_table("validated", "index_levels").read(lake, dates[0], dates[-1], columns=["date", "index", "close"])
    vix = idx[idx["index"] == "VIX"]
    return pd.Series(vix["close"].to_numpy(float), index=pd.DatetimeIndex(pd.to_datetime(vix["date"])))


def write_scenario(lake: Lake, name: str, tables: dict[str, pd.DataFrame]) -> None:
    with lake.batch():
        for table, frame in tables.items():
            lake.write_table("sweep", f"{table}/scenario={name}", frame)


@dg.asset(key=SCENARIO_KEY, partitions_def=SCENARIOS, group_name="sweep", kinds={"parquet"},
          backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=RUN_SIZE),
          # every scenario reads the books' whole range (their days define it): all of books/account's partitions
          deps=[dg.AssetDep(layer_table("books", "account").key, partition_mapping=dg.AllPartitionMapping())],
          description="One configuration of the sensitivity grid: the books and their attribution re-run over every "
                      "session the lake's books hold (condor risk per cycle, hedge cap, bid/ask multiplier, skew "
                      "level, promoter leverage, condor exits), from the same validated, feature and signal rows; "
                      "its claims and outcome under sweep/<table>/scenario=<name>/.")
def sweep_scenario(context: dg.AssetExecutionContext, lake: LakeResource,
                   strategy: StrategyConfig) -> dg.MaterializeResult:
    dates = books_range(lake.lake)
    done = []

    def log(name: str, tables: dict[str, pd.DataFrame]) -> None:
        o = tables["outcome"].iloc[0]
        context.log.info(f"{name}: steward {o['steward_status']}, promoter {o['promoter_status']}")
        done.append(o)

    run_scenarios(lake.lake, list(context.partition_keys), strategy.book_config(), log)
    last = done[-1] if done else None
    meta = {"sessions": len(dates), "range": f"{dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}",
            "scenarios_in_run": len(context.partition_keys)}
    if last is not None and len(context.partition_keys) == 1:
        meta.update({"steward_claim": str(last["steward_status"]), "promoter_claim": str(last["promoter_status"]),
                     "steward_worst_2008_drawdown": f"{100 * last['steward_worst_2008_drawdown']:.1f} %"})
    return dg.MaterializeResult(metadata=meta)


def read_outcomes(lake: Lake) -> pd.DataFrame:
    """Every scenario's outcome the lake holds (those of the current grid)."""
    rows = []
    for s in scenarios.DEFAULT_GRID:
        try:
            rows.append(lake.read_table("sweep", f"outcome/scenario={s.name}"))
        except FileNotFoundError:
            continue
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def heatmap_png(outcomes: pd.DataFrame) -> bytes:
    """`_heatmap`; a partial grid (one level on an axis) has a singular extent, which matplotlib warns about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _heatmap(outcomes)


def _heatmap(outcomes: pd.DataFrame) -> bytes:
    """The steward's worst 2008 drawdown over condor risk x bid/ask multiplier, one panel per condor exit rule
    (the factorial part of the grid), each cell labelled with the steward claim's status."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = scenarios.Scenario()
    part = outcomes[(outcomes["hedge_cap"] == base.hedge_cap) & (outcomes["skew_scale"] == base.skew_scale)
                    & (outcomes["gross_limit"] == base.gross_limit) & (outcomes["fill_timing"] == base.fill_timing)]
    exits = sorted(part["condor_exits"].unique())
    fig, axes = plt.subplots(1, max(len(exits), 1), figsize=(5 * max(len(exits), 1), 4), squeeze=False)
    for ax, ex in zip(axes[0], exits):
        g = part[part["condor_exits"] == ex].pivot_table(index="condor_risk_per_cycle", columns="spread_multiplier",
                                                          values="steward_worst_2008_drawdown", aggfunc="first")
        status = part[part["condor_exits"] == ex].pivot_table(index="condor_risk_per_cycle",
                                                              columns="spread_multiplier", values="steward_status",
                                                              aggfunc="first")
        im = ax.imshow(100 * g.to_numpy(float), cmap="RdYlGn", vmin=-40, vmax=0, aspect="auto", origin="lower")
        ax.set_xticks(range(len(g.columns)), [f"{c:g}x" for c in g.columns])
        ax.set_yticks(range(len(g.index)), [f"{100 * r:.0f} %" for r in g.index])
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                ax.text(j, i, f"{100 * g.iat[i, j]:.1f} %\n{status.iat[i, j]}", ha="center", va="center", fontsize=7)
        ax.set_xlabel("bid/ask multiplier")
        ax.set_ylabel("condor risk per cycle")
        ax.set_title(f"steward worst 2008 drawdown, condor exits: {ex}")
        fig.colorbar(im, ax=ax, label="%")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


@dg.asset(key=ROBUSTNESS_KEY, deps=[SCENARIO_KEY], group_name="sweep", kinds={"parquet"},
          description="Over every scenario the lake holds: per claim, in how many configurations it holds (or cannot "
                      "be tested) and the assumption it is most sensitive to; the outcomes table and a heat-map. The "
                      "verdict prints these lines when they cover the same books.")
def sweep_robustness(lake: LakeResource) -> dg.MaterializeResult:
    outcomes = read_outcomes(lake.lake)
    if not len(outcomes):
        raise FileNotFoundError("sweep/robustness: no scenario has been materialized (make sweep)")
    dates = books_range(lake.lake)
    table = scenarios.robustness(outcomes).assign(books_range=f"{dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}")
    png = heatmap_png(outcomes)
    lake.lake.write_table("sweep", "robustness", table)
    lake.lake.write_table("sweep", "outcomes", outcomes)
    lake.lake.write_document("sweep", "robustness", "heatmap.png", png)
    shown = outcomes[["scenario", "steward_status", "steward_worst_2008_drawdown", "promoter_status",
                      "promoter_vx_alone_calls_2008", "irr_steward", "irr_promoter"]]
    return dg.MaterializeResult(metadata={
        "configurations": len(outcomes),
        **{f"claim_{i + 1}": r["summary"] for i, r in table.iterrows()},
        "robustness": dg.MetadataValue.md(table_md(table[["claim", "summary"]])),
        "outcomes": dg.MetadataValue.md(table_md(shown)),
        "heatmap": dg.MetadataValue.md(f"![heatmap](data:image/png;base64,{_b64(png)})"),
    })


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def robustness_for_verdict(lake: Lake) -> pd.DataFrame | None:
    """The sweep's lines when the lake holds them for the books it has now (same range), else None."""
    try:
        table = lake.read_table("sweep", "robustness")
    except FileNotFoundError:
        return None
    dates = books_range(lake)
    if not len(table) or table["books_range"].iloc[0] != f"{dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}":
        return None
    return table


def scenario_problems(tables: dict[str, pd.DataFrame], name: str) -> list[RuleFailure]:
    """One scenario's outputs: every claim a known status (a reason where it cannot be tested), the
    account one row per (date, mode) with finite equity, the outcome naming this scenario."""
    out = []
    claims = tables["claims"]
    unknown = ~claims["status"].isin(verdict.STATUSES)
    if unknown.any():
        out.append(RuleFailure.from_mask("status", "status", f"{name}: a claim status outside {verdict.STATUSES}",
                                         claims, unknown.to_numpy()))
    silent = (claims["status"] == verdict.CANNOT_BE_TESTED) & (claims["reason"].astype(str).str.len() == 0)
    if silent.any():
        out.append(RuleFailure.from_mask("reason", "reason", f"{name}: an untestable claim without its reason",
                                         claims, silent.to_numpy()))
    account = tables["account"]
    out += finite_columns(account, ("equity", "cash", "margin_requirement"))
    out += unique_keys(account, ("date", "mode"))
    if tables["outcome"]["scenario"].tolist() != [name]:
        out.append(RuleFailure("outcome", "scenario", f"{name}: the outcome does not name its scenario", 1))
    return out


@dg.asset_check(asset=SCENARIO_KEY, name="scenario_check", blocking=True, partitions_def=SCENARIOS,
                description="each scenario's claims have a known status (and a reason when untestable), its account "
                            "one finite row per day and mode, its outcome names it")
def scenario_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    failures, rows = [], 0
    for name in context.partition_keys:
        try:
            tables = {t: lake.lake.read_table("sweep", f"{t}/scenario={name}")
                      for t in ("claims", "account", "outcome")}
        except FileNotFoundError as exc:
            failures.append(RuleFailure("present", "*", f"{name}: {exc}", 0, [name]))
            continue
        rows += len(tables["account"])
        failures += scenario_problems(tables, name)
    return check_result(CheckReport("sweep/scenario", rows, failures))


@dg.asset_check(asset=ROBUSTNESS_KEY, name="robustness_check", blocking=True,
                description="one line per claim, counted over the scenarios the lake holds (k <= n)")
def robustness_check(lake: LakeResource) -> dg.AssetCheckResult:
    table = lake.lake.read_table("sweep", "robustness")
    failures = []
    if len(table) != 3:
        failures.append(RuleFailure("one_line_per_claim", "claim", f"{len(table)} lines, 3 claims", len(table)))
    over = (table["holds"] + table["cannot_be_tested"] > table["configurations"]).to_numpy()
    if over.any():
        failures.append(RuleFailure.from_mask("counts", "holds", "more configurations counted than held", table,
                                              over))
    return check_result(CheckReport("sweep/robustness", len(table), failures))


assets = [sweep_scenario, sweep_robustness]
checks = [scenario_check, robustness_check]
