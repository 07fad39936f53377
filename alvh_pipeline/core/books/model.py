"""What the books read and carry: the user's settings (`BookConfig`), everything one day's
decisions may read (`MarketDay`), and what carries from one day to the next for one mode
(`ModeState`, all of it in the lake)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from alvh_pipeline.core import allocation as alloc
from alvh_pipeline.core import alvh, condor
from alvh_pipeline.core import statarb_book as sab
from alvh_pipeline.core.books.tables import empty_legs


@dataclass(frozen=True)
class BookConfig:
    """What the books read from the user's settings (`resources.StrategyConfig.book_config()`
    holds the one default of each); the rule sets keep their own documented defaults."""

    account_equity: float
    hedge_cap: float  # net VX delta dollars <= this x the condor program's notional risk (ALVH ladder)
    stress_move_vix_points: float
    modes: tuple[str, ...]
    condor_risk_per_cycle: float  # a cycle's condors' max loss <= this x the mode's equity
    hedge_spend_per_month: float  # steward's option premium per month, fraction of the hedge sleeve's capital
    spx_option_fee: float
    vix_option_fee: float
    vx_future_fee: float
    equity_fee_per_share: float
    hedge_band: float = 0.25  # hysteresis: re-size L2 when its target moved more than this share
    gross_limit: float = 2.0  # promoter: stat-arb gross notional <= this x equity (Reg-T 2x)
    promoter_vx_share: float = 0.30  # promoter: static long VX notional as a share of equity
    short_borrow_fee: float = 0.005  # a year, on short stock value: proceeds earn the T-bill less this
    fill_timing: str = "close"  # "close": fills at the decision close's touch; "next": at the next session's
    allocation_window: int = 63
    condor_rules: condor.CondorRules = field(default_factory=lambda: condor.CNDR_RULES)
    ladder_rules: alvh.LadderRules = field(default_factory=alvh.LadderRules)
    statarb_rules: sab.StatArbRules = field(default_factory=lambda: sab.StatArbRules(max_gross_leverage=1.0))


@dataclass
class MarketDay:
    """Everything day t's decisions may read (rows dated <= t only)."""

    date: pd.Timestamp
    spx: pd.DataFrame  # spx_options of the day
    vix: pd.DataFrame  # vix_options of the day
    futures: pd.DataFrame  # vix_futures of the day
    spx_open: float
    spx_close: float
    vix_open: float
    vix_close: float
    rate: float  # 13-week T-bill, fraction
    regime: pd.Series  # the signals/regime row
    statarb: pd.DataFrame  # signals/statarb rows of the day
    equities: pd.DataFrame  # equity_bars of the day (symbol, close, bid, ask)
    equity_vols: pd.Series  # symbol -> trailing daily return std (rows <= t)
    vx_beta: pd.Series  # month_index -> beta of that month's future to spot VIX (rows <= t)
    beta_rising: bool  # the universe's mean 60-day CAPM beta above its value a month earlier
    provenance: str  # "synthetic" | "real" | "derived" | "model" | "mixed"
    days_since_previous: int = 1  # calendar days since the previous session (interest accrual)
    # VX final settlement values (SOQ) by expiry, real and published, for the expiries whose futures
    # the market's rows hold as real: VIX options and VX futures expiring then settle on them
    vx_final_settlement: dict[pd.Timestamp, float] = field(default_factory=dict)


@dataclass
class ModeState:
    """What carries from one day to the next for one mode (all of it is in the lake)."""

    mode: str
    cash: float
    legs: pd.DataFrame  # open legs (LEG_COLUMNS); a `Table` of them while `simulate` runs
    sleeve_cash: dict[str, float]  # cumulative cash flows per sleeve (for sleeve P&L)
    sleeve_value: dict[str, float]  # yesterday's sleeve value (cash + marks)
    sleeve_returns: pd.DataFrame  # trailing daily sleeve returns (index date, columns SLEEVES)
    weights: dict[str, float]  # yesterday's weights
    margin_call: float = 0.0  # shortfall flagged at yesterday's close, to cut today
    last_condor_expiry: pd.Timestamp | None = None  # one condor per monthly expiry
    last_hedge_spend_month: str = ""  # YYYY-MM of the last premium budget refresh
    hedge_budget_left: float = 0.0
    program_notional: float = 0.0  # the condor program's max loss, kept between cycles (DESIGN §5)
    l2_target: float = 0.0  # the L2 target (net VX delta dollars) at its last re-size (hysteresis)
    orders: object = None  # fill_timing "next": the close's decisions (a `Table`), filled at the next session


def fresh_state(mode: str, equity: float) -> ModeState:
    return ModeState(mode, equity, empty_legs(), {s: 0.0 for s in alloc.SLEEVES}, {s: 0.0 for s in alloc.SLEEVES},
                     pd.DataFrame(columns=list(alloc.SLEEVES), dtype=float), {})
