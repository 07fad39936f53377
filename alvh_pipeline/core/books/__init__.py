"""The books engine: two accounts (modes "steward" and "promoter") run side by side from the same
market data around one SPX iron-condor program (DESIGN §5), each holding three books — the
condors, stat-arb pairs and the hedge (the steward's ALVH ladder: L1 VIX calls, L2 VX futures
calendar or the second engine's synthetic VIX-option futures, L3 SPX put wings; the promoter's
static long VX future) — as a small account would: fills at bid/ask, fees per contract, margin,
margin calls, interest on cash. No Dagster import.

One module per concept, each importing only those above it:
- `tables`: the leg and trade columns, multipliers, `Table` and pandas-exact sums,
- `model`: `BookConfig`, `MarketDay`, `ModeState`,
- `quotes`: the day's quotes (`DayQuotes`) and the legs' marks,
- `margin`: margin, the condor program's max loss, the sizing rule's net VX delta dollars, values,
- `trades`: fills, expiry settlements, new legs, and `_Day` (one mode's working state in a day),
- `entries`: the margin-call cut, condor and stat-arb exits and entries, hedge rolls,
- `hedge`: the ladder's sizing, the promoter's static VX, the sizing rule,
- `orders`: fills at the next session (`BookConfig.fill_timing = "next"`): orders and their fills,
- `day`: the day loop (`step`, `simulate`; its docstring gives the order of a day's events),
- `run_inputs`: each day's `MarketDay` from multi-day frames, a mode's state from the lake.

Speed. A mode holds a few dozen legs, where pandas' per-operation overhead (~0.1 ms) dwarfs the
arithmetic, so inside `simulate` the legs and trades are `Table`s (one numpy array per column) and
DataFrames are built once per run. The day's quotes are marked once and shared by the modes
(`DayQuotes`), with lookups by key instead of merges; selections that do not depend on the mode
(the condor, the hedge legs) are made once per day. Every number is the same, to the bit, as the
pandas formulation it replaces (sums in the same order, pandas' groupby sum reproduced).
"""

from alvh_pipeline.core.books.day import DayResult, _interest, book_greeks, simulate, step
from alvh_pipeline.core.books.entries import PAIR_COLUMNS
from alvh_pipeline.core.books.hedge import MIN_CALENDAR_BETA_SPREAD
from alvh_pipeline.core.books.margin import (
    HEDGE_VX_LAYERS,
    STATIC_VX_LAYER,
    condor_max_loss,
    liquidation_value,
    margin_components,
    margin_requirement,
    mark_value,
    naked_index_option_margin,
    vx_delta_dollars,
    vx_equivalent,
    vx_futures_loss,
)
from alvh_pipeline.core.books.model import BookConfig, MarketDay, ModeState, fresh_state
from alvh_pipeline.core.books.quotes import LEG_MARK_FIELDS, MARK_FIELDS, DayQuotes, mark_legs
from alvh_pipeline.core.books.run_inputs import (
    BETA_TREND_LAG,
    BETA_WINDOW,
    HISTORY_SESSIONS,
    VOL_WINDOW,
    _real_final_settlements,
    market_days,
    state_from_lake,
    trailing_std,
)
from alvh_pipeline.core.books.tables import (
    BOOKS,
    DAYS_PER_YEAR,
    HEDGE_LAYERS,
    LEG_COLUMNS,
    LEG_SORT,
    SPX_MULT,
    TRADE_COLUMNS,
    TRADE_SORT,
    VIX_OPT_MULT,
    VX_MULTIPLIER,
    Table,
    _empty,
    empty_legs,
    empty_trades,
    sleeve_of,
)
from alvh_pipeline.core.books.trades import settle_rows, settlement_values, trade_rows

# what callers read as `books.X` (the private names: those tests and comments name)
__all__ = [
    "BETA_TREND_LAG", "BETA_WINDOW", "BOOKS", "DAYS_PER_YEAR", "HEDGE_LAYERS", "HEDGE_VX_LAYERS", "HISTORY_SESSIONS",
    "LEG_COLUMNS", "LEG_MARK_FIELDS", "LEG_SORT", "MARK_FIELDS", "MIN_CALENDAR_BETA_SPREAD", "PAIR_COLUMNS",
    "SPX_MULT", "STATIC_VX_LAYER", "TRADE_COLUMNS", "TRADE_SORT", "VIX_OPT_MULT", "VOL_WINDOW", "VX_MULTIPLIER",
    "BookConfig", "DayQuotes", "DayResult", "MarketDay", "ModeState", "Table",
    "_empty", "_interest", "_real_final_settlements",
    "book_greeks", "condor_max_loss", "empty_legs", "empty_trades", "fresh_state", "liquidation_value",
    "margin_components", "margin_requirement", "mark_legs", "mark_value", "market_days", "naked_index_option_margin",
    "settle_rows", "settlement_values", "simulate", "sleeve_of", "state_from_lake", "step", "trade_rows",
    "trailing_std", "vx_delta_dollars", "vx_equivalent", "vx_futures_loss",
]
