"""Vendor file layouts the `files` source reads (issue 19), recognised by their header row, each
mapped to a raw contract (`schemas.CONTRACTS`) in one table-driven place (`LAYOUTS`). A mapping
turns the vendor's columns into the contract's (text, or numbers it had to read to place a row), so
every rule of the `files` source (sessions, integers, encodings) and of the gate applies after
mapping, as to our own files. The README's "Bring your own data" table documents each mapping.

- `cboe_index_history` / `cboe_vixcurrent` -> index_levels (the index from the file name / VIX).
- `cboe_datashop` -> spx_options and vix_options (the 15:45 snapshot; `^SPX` / `^VIX` rows to
  their table, roots SPX / SPXW / VIX / VIXW).
- `orats_smv_strikes` -> spx_options (a strike's call and put side by side become two rows).
- `historical_option_data` -> spx_options (no quote sizes: 0).
- `cfe_vx_history` -> vix_futures (as `real_data` reads the same publication; no quotes).
- `equity_basket` -> equity_bars (optional sector, bid, ask).

A row the mapping cannot place (an unknown underlying or root, an expiry the calendar does not list
for its root, a strike in another unit, a value that is not a number or a date) raises
`MappingError` naming the file, the vendor's column, the row and the line. What a layout does not
carry (option rates and dividends, futures and equity quotes) is left NaN / 0 here and completed
by `sources/complete.py`. Mapped rows are labelled `real:<source>` (`core/provenance.py`). A file
whose header is neither the contract nor a layout for its table is refused naming the layouts
tried; `vendor` (ALVH_VENDOR) forces a layout where a header is ambiguous.
"""

from __future__ import annotations

import csv
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core import provenance
from alvh_pipeline.schemas import CONTRACTS


@dataclass(frozen=True)
class Layout:
    name: str
    table: str
    header: tuple[str, ...]  # the vendor's columns, in the vendor's spelling (compared exactly, in any order)
    to_contract: Callable[[pd.DataFrame, Path], pd.DataFrame]  # text in, the contract's columns as text out
    preamble: int = 0  # lines before the header (a disclaimer)
    optional: tuple[str, ...] = ()  # columns some of the vendor's files carry and others do not
    describe: str = ""  # the vendor's name for the file, for messages and the README
    text: tuple[str, ...] = ()  # if set: only these are read as text, the rest as numbers where they all are
    # (a chain file's numbers parsed by the CSV reader, twice as fast; a column holding anything else
    # stays text and `_number` refuses the value by line)


class MappingError(ValueError):
    """A vendor row the mapping cannot place; the message names the file, the vendor's column and
    the (1-based) data row and line."""


def refuse_rows(path: Path, column: str, bad: np.ndarray, shown: pd.Series, why: str, preamble: int = 0,
                rows: np.ndarray | None = None) -> None:
    """Raise MappingError for the first `bad` row: file, the vendor's column, row, line and value.
    `rows`: each position's row in the vendor's file (when the mapped rows are not the file's)."""
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    row = int(rows[i]) if rows is not None else i
    value = str(shown.iloc[i])
    value = value if len(value) <= 40 else value[:37] + "..."
    raise MappingError(f"{path}: column '{column}' row {row + 1} (line {row + 2 + preamble}): {value!r}: {why} "
                       f"({int(bad.sum())} such rows)")


def _us_dates(raw: pd.Series) -> pd.Series:
    """Cboe's M/D/YYYY dates as ISO text; a value that is not such a date is kept as delivered, so
    the `files` source refuses it naming the value."""
    parsed = pd.to_datetime(raw, format="%m/%d/%Y", errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), raw)


def _any_dates(raw: pd.Series) -> pd.Series:
    """ISO (YYYY-MM-DD) or US (M/D/YYYY) dates as ISO text (vendors use either); other values kept
    as delivered for the `files` source to refuse by name. Parsed once per distinct value (a chain
    file holds one quote date and a few dozen expiries)."""
    codes, uniques = pd.factorize(raw)
    text = pd.Series(uniques, dtype=object).astype(str).str.strip()
    us = text.str.contains("/", regex=False)
    iso = text.where(~us, _us_dates(text)) if us.any() else text
    return pd.Series(iso.to_numpy(object)[codes], index=raw.index)


def _number(frame: pd.DataFrame, column: str, path: Path, preamble: int = 0,
            rows: np.ndarray | None = None) -> np.ndarray:
    """A vendor's numeric column as float64; a value that is not a number is refused by name
    (`rows`: each position's row in the file, when `frame` holds some of its rows)."""
    if frame[column].dtype.kind in "fiu":  # read as numbers already (`Layout.text`)
        return frame[column].to_numpy("float64")
    text = frame[column].astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce")
    refuse_rows(path, column, num.isna().to_numpy() & (text != ""), text, "not a number", preamble, rows)
    return num.to_numpy("float64")


def _index_rows(frame: pd.DataFrame, index: str, columns: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame({"date": _us_dates(frame[columns["date"]]), "index": index})
    for ours in ("open", "high", "low", "close"):
        out[ours] = frame[columns[ours]]
    out["provenance"] = provenance.real("cboe")
    return out[CONTRACTS["index_levels"].column_names]


def _index_of(path: Path) -> str:
    """`VIX_History.csv` -> VIX (Cboe names its index histories `<INDEX>_History.csv`)."""
    stem = path.name.split(".", 1)[0]
    match = re.match(r"^([A-Za-z0-9]+)_History$", stem)
    if not match:
        raise ValueError(f"{path}: a Cboe index history is named <INDEX>_History.csv (e.g. VIX_History.csv), "
                         f"so the index it holds can be told; rename the file")
    return match.group(1).upper()


# ---- option chains ------------------------------------------------------------------------------
# Which underlying and roots feed which table. Rows of the other option table's underlying are left
# for that table (one vendor file may hold both); any other underlying, and an unknown root, is
# refused. Roots the books do not trade (quarterlies, PM-settled monthlies) are set aside, counted.

UNDERLYINGS = {"spx_options": ("SPX", "^SPX", "SPXW"), "vix_options": ("VIX", "^VIX", "VIXW")}  # ORATS: ticker = root
TRADED_ROOTS = {"spx_options": ("SPX", "SPXW"), "vix_options": ("VIX", "VIXW")}
SET_ASIDE_ROOTS = {"spx_options": ("SPXQ", "SPXPM", "SPXW.EOM"), "vix_options": ()}
WEEKLY_ROOTS = ("SPXW", "VIXW")
TRADED_UNDERLYINGS = tuple(u for us in UNDERLYINGS.values() for u in us)
log = logging.getLogger(__name__)


def _place_chain(chain: pd.DataFrame, raw: pd.DataFrame, table: str, path: Path, columns: dict[str, str],
                 layout: str) -> pd.DataFrame:
    """Checks every option row can be placed, then keeps the table's rows. `chain`: the mapped
    rows (one per vendor row, or two for side-by-side layouts; `row` = the vendor's row);
    `columns`: the vendor's names of date / underlying_symbol / root / expiry / strike."""
    at = chain["row"].to_numpy()

    def refuse(key: str, bad: np.ndarray, why: str) -> None:
        if bad.any():  # the vendor's text, for the message only
            refuse_rows(path, columns[key], bad, raw[columns[key]].astype(str).iloc[at].reset_index(drop=True), why,
                        rows=at)

    def upper(key: str) -> np.ndarray:
        """The column's text, stripped and upper case, per mapped row (computed on distinct values)."""
        codes, uniques = pd.factorize(raw[columns[key]].astype(str))
        return pd.Index(uniques).str.strip().str.upper().to_numpy(object)[codes][at]

    sym = upper("underlying_symbol")
    known = sorted({u for us in UNDERLYINGS.values() for u in us})
    refuse("underlying_symbol", ~np.isin(sym, known), f"an underlying the {layout} mapping does not place "
           f"(known: {known})")
    mine = np.isin(sym, UNDERLYINGS[table])  # the other option table's rows are left for it
    root = upper("root")
    known_roots = TRADED_ROOTS[table] + SET_ASIDE_ROOTS[table]
    refuse("root", mine & ~np.isin(root, known_roots), f"an unknown {table} root (known: {list(known_roots)})")
    aside = mine & np.isin(root, SET_ASIDE_ROOTS[table])
    parsed = {}
    for key in ("date", "expiry"):  # once per distinct value
        codes, uniques = pd.factorize(chain[key])
        values = pd.to_datetime(pd.Index(uniques), format="ISO8601", errors="coerce")
        parsed[key] = (codes, values)
        refuse(key, mine & np.asarray(values.isna())[codes], "not a date (YYYY-MM-DD or M/D/YYYY)")
    codes, expiries = parsed["expiry"]
    kinds = np.array(_expiry_kinds(table, tuple(expiries.as_unit("ns").asi8.tolist())), dtype=object)
    for key, (c, values) in parsed.items():  # parsed once: the contract check takes dates as they are
        chain[key] = np.asarray(values.as_unit("ns"))[c]
    kind = np.where(mine, kinds[codes], "")
    weekly_root = np.isin(root, WEEKLY_ROOTS)
    refuse("expiry", mine & ~aside & ((kind == "") | (~weekly_root & (kind == "weekly"))),
           "an expiry the exchange calendar does not list for this root (a weekly on a day Cboe listed none, or a "
           "standard-root expiry that is not the monthly)")
    strike = chain["strike"].to_numpy("float64")
    if table == "spx_options":
        under = chain["underlying"].to_numpy("float64")
        refuse("underlying_price", mine & ~aside & ~(under > 0), "no underlying price (zero or blank)")
        refuse("strike", mine & ~aside & ((strike <= 0) | (strike > 10 * under) | (strike < under / 20)),
               "a strike more than 10x (or under 1/20 of) the underlying: a strike in another unit?")
    else:
        refuse("strike", mine & ((strike <= 0) | (strike > 500)), "a VIX strike outside (0, 500] points: a strike "
               "in another unit?")
    # an option expiring on the file's own date (a vendor lists the day's expiries with their final
    # quotes) settles that day: no contract to trade or hold overnight, set aside (counted)
    codes_d, dates = parsed["date"]
    expiring = mine & ~aside & (np.asarray(expiries.as_unit("ns"))[codes] == np.asarray(dates.as_unit("ns"))[codes_d])
    aside |= expiring
    # a line with no offer (ask 0 or blank) is no quote: the books must not buy it "for free"
    ask = chain["ask"].to_numpy("float64")
    unquoted = mine & ~aside & ~(ask > 0)
    aside |= unquoted
    keep = mine & ~aside
    # a third-Friday SPXW (PM-settled) beside the SPX monthly of the same strike: the monthly is the
    # contract the CNDR rules trade; the PM twin is set aside (counted), never a duplicate key
    dup = chain[keep].duplicated(["date", "expiry", "strike", "option_type"], keep=False).to_numpy()
    twin = np.zeros(len(chain), bool)
    twin[np.flatnonzero(keep)[dup & weekly_root[keep]]] = True
    keep &= ~twin
    if aside.any() or twin.any():
        log.warning("%s: %d %s rows set aside (%d expiring on the quote date; %d without an offer; roots %s, not "
                    "traded by the books; %d PM-settled twins of SPX monthlies)", path, int(aside.sum() + twin.sum()),
                    layout, int(expiring.sum()), int(unquoted.sum()), sorted(set(root[aside & ~expiring & ~unquoted])),
                    int(twin.sum()))
    return chain[keep].drop(columns="row").reset_index(drop=True)


@functools.lru_cache(maxsize=4096)
def _expiry_kinds(table: str, expiries: tuple[int, ...]) -> tuple[str, ...]:
    """`calendar.spx_expiry_kind` / `vix_expiry_kind` of a file's distinct expiries (ns; NaT allowed),
    once per set: daily files of a year repeat the same few dozen."""
    values = pd.DatetimeIndex(np.array(expiries, dtype="datetime64[ns]"))
    kinds = np.full(len(values), "", dtype=object)
    ok = ~values.isna()
    kinds[ok] = (cal.spx_expiry_kind if table == "spx_options" else cal.vix_expiry_kind)(values[ok])
    return tuple(kinds.tolist())


def _chain_frame(table: str, **cols) -> pd.DataFrame:
    """A chain in `table`'s contract columns; rate / dividend_yield / future_price NaN unless given
    (filled from the rates table and parity by `sources/complete.py`)."""
    out = pd.DataFrame(cols)
    for c in CONTRACTS[table].column_names:
        if c not in out:
            out[c] = np.nan
    return out[CONTRACTS[table].column_names + ["row"]]


def _option_type(raw: pd.Series, path: Path, column: str, rows: np.ndarray | None = None) -> pd.Series:
    """C / P from a vendor's C, P, call, put (any case)."""
    text = raw.astype(str).str.strip().str.upper()
    kind = text.map({"C": "C", "P": "P", "CALL": "C", "PUT": "P"})
    refuse_rows(path, column, kind.isna().to_numpy(), raw, "option type is neither call nor put", rows=rows)
    return kind


def _datashop(table: str) -> Callable[[pd.DataFrame, Path], pd.DataFrame]:
    def mapping(whole: pd.DataFrame, path: Path) -> pd.DataFrame:
        # one file may hold both option tables' underlyings: map only this table's rows (an unknown
        # underlying is refused by `_place_chain`, on every row)
        codes, uniques = pd.factorize(whole["underlying_symbol"].astype(str))
        known = set(TRADED_UNDERLYINGS) - set(UNDERLYINGS[table])
        rows = np.flatnonzero(~np.isin(pd.Index(uniques).str.strip().str.upper().to_numpy(object), list(known))[codes])
        f = whole.iloc[rows]
        # the 15:45 snapshot (module docstring: the books decide and fill on it)
        ub = _number(f, "underlying_bid_1545", path, rows=rows)
        ua = _number(f, "underlying_ask_1545", path, rows=rows)
        under = np.where((ub > 0) & (ua > 0), (ub + ua) / 2, np.maximum(ub, ua))
        if "active_underlying_price_1545" in f:
            active = _number(f, "active_underlying_price_1545", path, rows=rows)
            under = np.where(under > 0, under, active)
        under = np.where(under > 0, under, np.nan)
        num = {c: _number(f, c, path, rows=rows)
               for c in ("strike", "bid_1545", "ask_1545", "bid_size_1545", "ask_size_1545")}
        common = dict(date=_any_dates(f["quote_date"]), expiry=_any_dates(f["expiration"]), strike=num["strike"],
                      option_type=_option_type(f["option_type"], path, "option_type", rows).to_numpy(object),
                      bid=num["bid_1545"], ask=num["ask_1545"], bid_size=num["bid_size_1545"],
                      ask_size=num["ask_size_1545"], model_iv=np.nan, provenance=provenance.real("cboe_datashop"),
                      row=rows)
        common["date"], common["expiry"] = common["date"].to_numpy(object), common["expiry"].to_numpy(object)
        if table == "spx_options":
            chain = _chain_frame(table, underlying=under, **common)
        else:
            chain = _chain_frame(table, **common)
        return _place_chain(chain, whole, table, path, {
            "date": "quote_date", "underlying_symbol": "underlying_symbol", "root": "root", "expiry": "expiration",
            "strike": "strike", "underlying_price": "underlying_bid_1545"}, "Cboe DataShop")
    return mapping


def _orats(f: pd.DataFrame, path: Path) -> pd.DataFrame:
    """ORATS SMV strikes: one row per strike, the call's and the put's quotes side by side."""
    n = len(f)
    spot = _number(f, "spotPrice", path)
    stock = _number(f, "stockPrice", path)
    under = np.where(spot > 0, spot, stock)
    sides = []
    for side, kind in (("call", "C"), ("put", "P")):
        num = {c: _number(f, f"{side}{c}", path) for c in ("BidPrice", "AskPrice", "BidSize", "AskSize")}
        sides.append(_chain_frame(
            "spx_options", date=_any_dates(f["tradeDate"]), expiry=_any_dates(f["expirDate"]),
            strike=_number(f, "strike", path), option_type=kind, bid=num["BidPrice"], ask=num["AskPrice"],
            bid_size=num["BidSize"], ask_size=num["AskSize"], underlying=under, model_iv=np.nan,
            provenance=provenance.real("orats"), row=np.arange(n)))
    chain = pd.concat(sides, ignore_index=True)
    chain = chain.iloc[np.argsort(chain["row"].to_numpy() * 2 + (chain["option_type"] == "P").to_numpy(),
                                  kind="stable")].reset_index(drop=True)
    return _place_chain(chain, f, "spx_options", path, {
        "date": "tradeDate", "underlying_symbol": "ticker", "root": "ticker", "expiry": "expirDate",
        "strike": "strike", "underlying_price": "spotPrice"}, "ORATS")


def _historical_option_data(f: pd.DataFrame, path: Path) -> pd.DataFrame:
    """HistoricalOptionData.com: one row per option; no quote sizes (0: not delivered; the books
    read no option sizes)."""
    chain = _chain_frame(
        "spx_options", date=_any_dates(f["DataDate"]), expiry=_any_dates(f["Expiration"]),
        strike=_number(f, "Strike", path), option_type=_option_type(f["Type"], path, "Type"),
        bid=_number(f, "Bid", path), ask=_number(f, "Ask", path), bid_size=0, ask_size=0,
        underlying=_number(f, "UnderlyingPrice", path), model_iv=np.nan,
        provenance=provenance.real("historical_option_data"), row=np.arange(len(f)))
    return _place_chain(chain, f, "spx_options", path, {
        "date": "DataDate", "underlying_symbol": "UnderlyingSymbol", "root": "OptionRoot", "expiry": "Expiration",
        "strike": "Strike", "underlying_price": "UnderlyingPrice"}, "HistoricalOptionData")


# ---- CFE VX futures history ----------------------------------------------------------------------

CFE = ("Trade Date", "Futures", "Open", "High", "Low", "Close", "Settle", "Change", "Total Volume", "EFP",
       "Open Interest")
CURVE_MONTHS = 8  # the contract lists M1..M8


def _cfe_futures(f: pd.DataFrame, path: Path) -> pd.DataFrame:
    """CFE's VX history (the layout of the file the replay ships), as `real_data` reads it: prices
    before 2007-03-26 divided by 10 (the old multiplier), untraded rows (settle 0) and each
    contract's final-settlement row (date = expiry) not curve rows, M1..M8 by expiry per day. No
    quotes in the file: bid / ask are left NaN for the quote model (`complete.py`)."""
    from alvh_pipeline.sources.real_data import MULTIPLIER_CHANGE, cfe_contracts

    codes = cfe_contracts(f["Futures"])
    refuse_rows(path, "Futures", ~codes["ok"].to_numpy(), f["Futures"],
                "not a CFE VX contract code such as 'K (May 08)' (month letter and month name agreeing)")
    contract, expiry = codes["contract"], codes["expiry"]
    date = pd.to_datetime(_us_dates(f["Trade Date"]), format="ISO8601", errors="coerce")
    refuse_rows(path, "Trade Date", date.isna().to_numpy(), f["Trade Date"], "not a date (M/D/YYYY)")
    settle = _number(f, "Settle", path) / np.where(date < MULTIPLIER_CHANGE, 10.0, 1.0)
    curve = (settle > 0) & (date < expiry).to_numpy()
    rows = pd.DataFrame({"date": date, "contract": contract, "expiry": pd.DatetimeIndex(expiry), "settle": settle,
                         "volume": _number(f, "Total Volume", path), "open_interest": _number(f, "Open Interest", path),
                         "row": np.arange(len(f))})[curve]
    rows = rows.sort_values(["date", "expiry"], kind="stable")
    rows["month_index"] = rows.groupby("date").cumcount() + 1
    beyond = rows["month_index"] > CURVE_MONTHS
    if (~curve).any() or beyond.any():
        log.info("%s: %d CFE rows are not curve rows (untraded, final settlement or beyond M%d)", path,
                 int((~curve).sum() + beyond.sum()), CURVE_MONTHS)
    rows = rows[~beyond]
    out = rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d"), expiry=rows["expiry"].dt.strftime("%Y-%m-%d"),
                      bid=np.nan, ask=np.nan, bid_size=0, ask_size=0, provenance=provenance.real("cfe"))
    return out[CONTRACTS["vix_futures"].column_names].reset_index(drop=True)


# ---- an equity basket -----------------------------------------------------------------------------

EQUITY_BASKET = ("date", "symbol", "open", "high", "low", "close", "volume")
ETFS = ("SPY", "QQQ", "IWM")
UNKNOWN_SECTOR = "Unassigned"


def _equity_basket(f: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One long CSV of daily bars (optionally `sector`, `bid`, `ask`): without a sector a name is
    'Unassigned' (the ETFs 'ETF'), so stat-arb pairs it with every other unassigned name; without
    bid / ask the quote model fills them (`complete.py`); sizes are always the model's."""
    symbol = f["symbol"].astype(str).str.strip()
    sector = (f["sector"].astype(str).str.strip() if "sector" in f
              else pd.Series(np.where(symbol.isin(ETFS), "ETF", UNKNOWN_SECTOR), index=f.index))
    out = pd.DataFrame({"date": _any_dates(f["date"]), "symbol": symbol, "sector": sector})
    for c in ("open", "high", "low", "close", "volume"):
        out[c] = f[c]
    for c in ("bid", "ask"):
        out[c] = f[c] if c in f else np.nan
    out["bid_size"] = out["ask_size"] = 0  # the model's (complete.py), as no file carries them
    out["provenance"] = provenance.real("equity_file")
    return out[CONTRACTS["equity_bars"].column_names]


DATASHOP = ("underlying_symbol", "quote_date", "root", "expiration", "strike", "option_type", "open", "high", "low",
            "close", "trade_volume", "bid_size_1545", "bid_1545", "ask_size_1545", "ask_1545", "underlying_bid_1545",
            "underlying_ask_1545", "bid_size_eod", "bid_eod", "ask_size_eod", "ask_eod", "underlying_bid_eod",
            "underlying_ask_eod", "vwap", "open_interest")
DATASHOP_CALCS = ("implied_underlying_price_1545", "active_underlying_price_1545", "implied_volatility_1545",
                  "delta_1545", "gamma_1545", "theta_1545", "vega_1545", "rho_1545", "delivery_code")
ORATS = ("ticker", "tradeDate", "expirDate", "dte", "strike", "stockPrice", "callVolume", "callOpenInterest",
         "callBidSize", "callAskSize", "putVolume", "putOpenInterest", "putBidSize", "putAskSize", "callBidPrice",
         "callValue", "callAskPrice", "putBidPrice", "putValue", "putAskPrice", "callBidIv", "callMidIv",
         "callAskIv", "smvVol", "putBidIv", "putMidIv", "putAskIv", "residualRate", "delta", "gamma", "theta",
         "vega", "rho", "phi", "driftlessTheta", "callSmvVol", "putSmvVol", "extSmvVol", "extCallValue",
         "extPutValue", "spotPrice", "quoteDate", "updatedAt", "snapShotEstTime", "snapShotDate")
HISTORICAL_OPTION_DATA = ("UnderlyingSymbol", "UnderlyingPrice", "Exchange", "OptionRoot", "OptionExt", "Type",
                          "Expiration", "DataDate", "Strike", "Last", "Bid", "Ask", "Volume", "OpenInterest", "IV",
                          "Delta", "Gamma", "Theta", "Vega")

DATASHOP_TEXT = ("underlying_symbol", "quote_date", "root", "expiration", "option_type", "delivery_code")
ORATS_TEXT = ("ticker", "tradeDate", "expirDate", "quoteDate", "updatedAt", "snapShotEstTime", "snapShotDate")
HOD_TEXT = ("UnderlyingSymbol", "Exchange", "OptionRoot", "OptionExt", "Type", "Expiration", "DataDate",
            "OptionSymbol", "AKA")

LAYOUTS: tuple[Layout, ...] = (
    Layout("cboe_index_history", "index_levels", ("DATE", "OPEN", "HIGH", "LOW", "CLOSE"),
           lambda f, p: _index_rows(f, _index_of(p), {"date": "DATE", "open": "OPEN", "high": "HIGH",
                                                      "low": "LOW", "close": "CLOSE"}),
           describe="Cboe index history (<INDEX>_History.csv)"),
    Layout("cboe_vixcurrent", "index_levels", ("Date", "VIX Open", "VIX High", "VIX Low", "VIX Close"),
           lambda f, p: _index_rows(f, "VIX", {"date": "Date", "open": "VIX Open", "high": "VIX High",
                                               "low": "VIX Low", "close": "VIX Close"}), preamble=1,
           describe="Cboe vixcurrent.csv"),
    Layout("cboe_datashop", "spx_options", DATASHOP, _datashop("spx_options"), optional=DATASHOP_CALCS,
           describe="Cboe DataShop Option EOD Summary", text=DATASHOP_TEXT),
    Layout("cboe_datashop", "vix_options", DATASHOP, _datashop("vix_options"), optional=DATASHOP_CALCS,
           describe="Cboe DataShop Option EOD Summary", text=DATASHOP_TEXT),
    Layout("orats_smv_strikes", "spx_options", ORATS, _orats, describe="ORATS SMV strikes", text=ORATS_TEXT),
    Layout("historical_option_data", "spx_options", HISTORICAL_OPTION_DATA, _historical_option_data,
           optional=("OptionSymbol", "AKA"), describe="HistoricalOptionData.com", text=HOD_TEXT),
    Layout("cfe_vx_history", "vix_futures", CFE, _cfe_futures, describe="CFE VX futures history"),
    Layout("equity_basket", "equity_bars", EQUITY_BASKET, _equity_basket, optional=("sector", "bid", "ask"),
           describe="equity basket (date, symbol, OHLC, volume)"),
)


def layouts_for(table: str) -> list[Layout]:
    return [lay for lay in LAYOUTS if lay.table == table]


def _fields(line: str) -> list[str]:
    return [f.strip().strip('"').strip() for f in line.split(",")]


def header_offset(lines: list[str], table: str) -> int:
    """Lines to skip before the header row: a layout's preamble when the line after it is that
    layout's header, else 0 (the first line is the header)."""
    for lay in layouts_for(table):
        if lay.preamble and len(lines) > lay.preamble and set(_fields(lines[lay.preamble])) == set(lay.header):
            return lay.preamble
    return 0


def feeds_several_tables(columns: list[str], table: str) -> bool:
    """Whether a file with this header is a layout that more than one table reads (a DataShop day:
    both option tables), so the `files` source keeps its read for the other table."""
    lay = detect(columns, table)
    return lay is not None and sum(other.name == lay.name for other in LAYOUTS) > 1


def read_types(header_line: str, table: str) -> type | dict[str, type]:
    """How the `files` source reads a CSV whose header row is `header_line`: every column as text
    (`str`), or, for a layout that names its text columns, those as text and the rest inferred."""
    fields = _fields(header_line)
    lay = detect(fields, table)
    if lay is None or not lay.text:
        return str
    raw = next(csv.reader([header_line]), [])
    return {name: str for name in raw if name.strip().strip('"') in lay.text}


def detect(columns: list[str], table: str) -> Layout | None:
    """The layout whose header is `columns` (any order, surrounding blanks ignored): every column of
    the layout, and none but its optional ones besides; or None."""
    got = {c.strip() for c in columns}
    for lay in layouts_for(table):
        if set(lay.header) <= got <= set(lay.header) | set(lay.optional):
            return lay
    return None


def tried(table: str) -> str:
    names = [lay.name for lay in layouts_for(table)]
    return ", ".join(names) if names else "none for this table"


def named(vendor: str, table: str) -> Layout | None:
    """The layout called `vendor` that serves `table` (None when it serves another table); an
    unknown name is refused listing the known ones."""
    names = sorted({lay.name for lay in LAYOUTS})
    if vendor not in names:
        raise ValueError(f"unknown vendor layout {vendor!r} (ALVH_VENDOR); known: {names}")
    return next((lay for lay in layouts_for(table) if lay.name == vendor), None)


def to_contract(frame: pd.DataFrame, table: str, path: Path, vendor: str = "") -> pd.DataFrame:
    """`frame` (text, as read) in the contract's columns: unchanged when it already has them; mapped
    when its header is a known layout of `table`; else unchanged (the contract check refuses it and
    names the layouts tried). `vendor` (the override for an ambiguous header) maps every file of a
    table that layout serves with it, and refuses a file missing one of its columns."""
    columns = [str(c) for c in frame.columns]
    forced = named(vendor, table) if vendor else None
    if forced is not None:
        missing = [c for c in forced.header if c not in {c.strip() for c in columns}]
        if missing:
            raise ValueError(f"{path}: not a {forced.name} file ({forced.describe}; the vendor override): "
                             f"missing columns {missing[:8]}")
        return forced.to_contract(frame.rename(columns={c: c.strip() for c in columns}), path)
    if set(columns) == set(CONTRACTS[table].column_names):
        return frame
    lay = detect(columns, table)
    if lay is None:
        return frame
    frame = frame.rename(columns={c: c.strip() for c in columns})
    return lay.to_contract(frame, path)
