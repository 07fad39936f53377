"""Raw table contracts: one documented schema per table, shared by every source, the lake and the
quality suites. A source must deliver exactly these columns (extra columns are an error) with
these dtypes; `keys` identify a row within a partition.

Every table carries `date` (the trading-day partition, a calendar date) and `provenance`
("synthetic", "real", "real:<source>", "derived" or "model": `core/provenance.py` lists the values).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

DATE = pa.date32()
F64 = pa.float64()
I64 = pa.int64()
STR = pa.string()


def type_family(t: pa.DataType) -> str:
    """The family a contract type belongs to: float, int, date or str."""
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "date"
    return "str"


# Identifier columns hold codes, never free text: each must match its pattern whole (the gate
# refuses anything else, so a delivered `=HYPERLINK(...)` never reaches validated/), and a file
# source reads them as written: the ticker `NA` is Nordic American Tankers, not a missing value.
SYMBOL = r"[A-Z][A-Z0-9]{0,9}(?:[.\-/][A-Z0-9]{1,4})?"  # AAPL, BRK.B, BF-B; S001 (synthetic)
VX_CONTRACT = r"VX[FGHJKMNQUVXZ]\d{2}"  # VX + month code + 2-digit year
CODE = r"[A-Z][A-Z0-9_]{0,15}"  # SPX, NYSE, FOMC
OPTION_TYPE = r"[CP]"
PROVENANCE = r"[a-z]+(?::[a-z0-9_]+)?"  # synthetic | real | real:<source> | derived | model


@dataclass(frozen=True)
class TableContract:
    name: str
    description: str
    columns: tuple[tuple[str, pa.DataType, str], ...]  # (name, type, meaning)
    keys: tuple[str, ...]
    nullable: frozenset[str] = frozenset()
    identifiers: tuple[tuple[str, str], ...] = ()  # (column, pattern) besides provenance

    @property
    def identifier_patterns(self) -> dict[str, str]:
        """Each identifier column's pattern (matched whole); provenance is one in every table."""
        return {**dict(self.identifiers), "provenance": PROVENANCE}

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(n, t, nullable=(n in self.nullable)) for n, t, _ in self.columns]
        )

    @property
    def column_names(self) -> list[str]:
        return [n for n, _, _ in self.columns]


_QUOTE = (
    ("bid", F64, "best bid"),
    ("ask", F64, "best ask"),
    ("bid_size", I64, "top-of-book bid size (contracts / shares)"),
    ("ask_size", I64, "top-of-book ask size"),
)
_TAIL = (("provenance", STR, "synthetic | real | real:<source> (core/provenance.py) | derived (computed from real "
                             "data by a stated rule) | model"),)

CONTRACTS: dict[str, TableContract] = {
    c.name: c
    for c in [
        TableContract(
            "equity_bars",
            "Daily bars of the equity universe and the ETFs SPY / QQQ / IWM, with closing quotes.",
            (
                ("date", DATE, "trading day"),
                ("symbol", STR, "ticker"),
                ("sector", STR, "GICS-like sector; 'ETF' for SPY/QQQ/IWM"),
                ("open", F64, "open"),
                ("high", F64, "high"),
                ("low", F64, "low"),
                ("close", F64, "close"),
                ("volume", I64, "shares traded"),
                *_QUOTE,
                *_TAIL,
            ),
            keys=("date", "symbol"),
            identifiers=(("symbol", SYMBOL),),
        ),
        TableContract(
            "index_levels",
            "Index levels: SPX (S&P 500), COMP (NASDAQ Composite), VIX.",
            (
                ("date", DATE, "trading day"),
                ("index", STR, "SPX | COMP | VIX"),
                ("open", F64, "open"),
                ("high", F64, "high"),
                ("low", F64, "low"),
                ("close", F64, "close"),
                *_TAIL,
            ),
            keys=("date", "index"),
            identifiers=(("index", CODE),),
        ),
        TableContract(
            "vix_futures",
            "CFE VX monthly futures M1..M8: daily settlement (index points, $1,000 multiplier) and closing quote.",
            (
                ("date", DATE, "trading day"),
                ("contract", STR, "VX + month code + 2-digit year, e.g. VXK08"),
                ("expiry", DATE, "final settlement date (Wednesday 30 days before next SPX monthly expiry)"),
                ("month_index", I64, "1 = front month"),
                ("settle", F64, "daily settlement, VIX points"),
                *_QUOTE,
                ("volume", I64, "contracts traded"),
                ("open_interest", I64, "open interest"),
                *_TAIL,
            ),
            keys=("date", "contract"),
            identifiers=(("contract", VX_CONTRACT),),
        ),
        TableContract(
            "spx_options",
            "SPX option chain closing quotes (European, cash-settled, $100 multiplier).",
            (
                ("date", DATE, "trading day"),
                ("expiry", DATE, "expiration date"),
                ("strike", F64, "strike, index points (5-point grid)"),
                ("option_type", STR, "C | P"),
                *_QUOTE,
                ("underlying", F64, "SPX close"),
                ("rate", F64, "continuously compounded risk-free rate"),
                ("dividend_yield", F64, "continuous dividend yield"),
                ("model_iv", F64, "implied vol used to price (null for real quotes)"),
                *_TAIL,
            ),
            keys=("date", "expiry", "strike", "option_type"),
            nullable=frozenset({"model_iv"}),
            identifiers=(("option_type", OPTION_TYPE),),
        ),
        TableContract(
            "vix_options",
            "VIX option chain closing quotes (European, $100 multiplier, priced on the same-month VX future).",
            (
                ("date", DATE, "trading day"),
                ("expiry", DATE, "expiration (= the VX future's final settlement)"),
                ("strike", F64, "strike, VIX points (1-point grid to 50, 5-point above)"),
                ("option_type", STR, "C | P"),
                *_QUOTE,
                ("future_price", F64, "settle of the same-month VX future"),
                ("rate", F64, "continuously compounded risk-free rate"),
                ("model_iv", F64, "Black-76 implied vol used to price (null for real quotes)"),
                *_TAIL,
            ),
            keys=("date", "expiry", "strike", "option_type"),
            nullable=frozenset({"model_iv"}),
            identifiers=(("option_type", OPTION_TYPE),),
        ),
        TableContract(
            "breadth",
            "NYSE breadth: advancing / declining / unchanged issues and volumes, new highs / lows.",
            (
                ("date", DATE, "trading day"),
                ("exchange", STR, "NYSE"),
                ("advancers", I64, "issues up"),
                ("decliners", I64, "issues down"),
                ("unchanged", I64, "issues unchanged"),
                ("total_issues", I64, "advancers + decliners + unchanged"),
                ("up_volume", I64, "volume in advancing issues"),
                ("down_volume", I64, "volume in declining issues"),
                ("new_highs", I64, "52-week highs"),
                ("new_lows", I64, "52-week lows"),
                *_TAIL,
            ),
            keys=("date", "exchange"),
            identifiers=(("exchange", CODE),),
        ),
        TableContract(
            "macro_events",
            "Macro calendar as known on `date`: scheduled FOMC / CPI / PPI releases within 90 days "
            "either side; `surprise` is known only for releases on or before `date` (else null).",
            (
                ("date", DATE, "as-of trading day"),
                ("event_type", STR, "FOMC | CPI | PPI"),
                ("event_date", DATE, "scheduled release date"),
                ("surprise", F64, "actual minus consensus, in standard deviations (null until released)"),
                *_TAIL,
            ),
            keys=("date", "event_type", "event_date"),
            nullable=frozenset({"surprise"}),
            identifiers=(("event_type", CODE),),
        ),
        TableContract(
            "fundamentals",
            "Point-in-time fundamentals: for each symbol the latest quarterly report published on or before `date`.",
            (
                ("date", DATE, "as-of trading day"),
                ("symbol", STR, "ticker"),
                ("fiscal_period_end", DATE, "quarter end the report covers"),
                ("report_date", DATE, "publication date (<= date)"),
                ("eps_ttm", F64, "trailing-12-month earnings per share"),
                ("cfps_ttm", F64, "trailing-12-month operating cash flow per share"),
                ("dps_ttm", F64, "trailing-12-month dividends per share"),
                ("shares_outstanding", I64, "shares outstanding"),
                *_TAIL,
            ),
            keys=("date", "symbol"),
            identifiers=(("symbol", SYMBOL),),
        ),
        TableContract(
            "rates",
            "Rates: 13-week T-bill (fraction, discount basis), a real effective exchange-rate index and a "
            "US-minus-foreign 2y rate differential (fraction).",
            (
                ("date", DATE, "trading day"),
                ("tbill_3m", F64, "13-week T-bill rate, fraction"),
                ("reer_index", F64, "real effective exchange rate index (2010 = 100)"),
                ("rate_differential", F64, "US minus foreign 2-year yield, fraction"),
                *_TAIL,
            ),
            keys=("date",),
        ),
    ]
}

RAW_TABLES: tuple[str, ...] = tuple(CONTRACTS)


# ---- books/* (written by the books engine; fixed schemas so every day's file has the same types,
# whatever values a run happens to hold: split runs and re-runs are byte-identical) -------------

BOOL = pa.bool_()
_LEG_TYPES = {
    "date": DATE, "mode": STR, "book": STR, "layer": STR, "position_id": STR, "instrument": STR, "kind": STR,
    "right": STR, "strike": F64, "expiry": DATE, "contract": STR, "quantity": F64, "multiplier": F64,
    "entry_date": DATE, "entry_price": F64, "credit": F64, "mark": F64, "bid": F64, "ask": F64, "delta": F64,
    "gamma": F64, "vega": F64, "theta": F64, "underlying": F64, "iv": F64, "beta_to_vix": F64,
    "vx_equivalent": F64, "mark_source": STR, "provenance": STR,
}
_TRADE_TYPES = {
    "date": DATE, "mode": STR, "book": STR, "layer": STR, "position_id": STR, "instrument": STR, "kind": STR,
    "right": STR, "strike": F64, "expiry": DATE, "contract": STR, "quantity": F64, "multiplier": F64, "fill": F64,
    "mid": F64, "spread_cost": F64, "fee": F64, "cash_flow": F64, "reason": STR, "provenance": STR,
}
_ACCOUNT_STR = {"mode", "events", "provenance", "hedge_budget_month", "allocation_basis", "pending_orders"}


def book_schema(name: str, columns) -> pa.Schema:
    """The arrow schema of a books table: legs (condor, statarb, alvh), trades, or account (floats
    except its named text, flag and date columns)."""
    if name in ("condor", "statarb", "alvh"):
        return pa.schema([(c, _LEG_TYPES[c]) for c in columns])
    if name == "trades":
        return pa.schema([(c, _TRADE_TYPES[c]) for c in columns])
    types = {"date": DATE, "last_condor_expiry": DATE, "margin_call": BOOL, "margin_call_vx_alone": BOOL}
    return pa.schema([(c, types.get(c, STR if c in _ACCOUNT_STR else F64)) for c in columns])


def benchmark_schema(columns) -> pa.Schema:
    """The arrow schema of benchmarks/indexes (`core.benchmarks.BENCHMARK_COLUMNS`): floats except
    its date, index name, expiry, roll flag and the count of intrinsic marks."""
    types = {"date": DATE, "index": STR, "expiry": DATE, "rolled": BOOL, "marks_intrinsic": I64}
    return pa.schema([(c, types.get(c, F64)) for c in columns])
