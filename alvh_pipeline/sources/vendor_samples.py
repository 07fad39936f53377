"""Sample files in the vendors' layouts, written from a source's chains: the stand-in for purchased
data in the tests, the README's worked example and `bench/vendor.py` (real files are licensed and
cannot ship). Each writer is the inverse of its mapping in `vendors.py` (our contract rows in, the
vendor's columns out), with the vendor's spellings: `^SPX` / `^VIX` underlyings, SPXW roots on
weeklies next to SPX monthlies, ORATS' side-by-side calls and puts, M/D/YYYY dates where the
vendor writes them. Columns our mapping does not read (greeks, volumes, open interest) are written
as the vendor would leave them for an untraded line: zero.

    python -m alvh_pipeline.sources.vendor_samples --layout cboe_datashop --start 2008-09-02 \
        --end 2008-09-30 --out drop/          # one zip per day, SPX and VIX, from the replay

Provenance: the files hold the replay's *model* chains; once read back they are labelled with the
vendor's real:<source> tag, as a purchased file would be. They demonstrate the mapping, not the
market.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.sources import vendors


def _iso(dates: pd.Series) -> pd.Series:
    return pd.to_datetime(dates).dt.strftime("%Y-%m-%d")


def _us(dates: pd.Series) -> pd.Series:
    return pd.to_datetime(dates).dt.strftime("%m/%d/%Y")


def _roots(chain: pd.DataFrame, table: str) -> np.ndarray:
    kind = (cal.spx_expiry_kind if table == "spx_options" else cal.vix_expiry_kind)(chain["expiry"])
    standard, weekly = ("SPX", "SPXW") if table == "spx_options" else ("VIX", "VIXW")
    return np.where(kind == "monthly", standard, weekly)


def datashop(spx: pd.DataFrame | None, vix: pd.DataFrame | None, calcs: bool = True,
             delivery_code: bool = False) -> pd.DataFrame:
    """Cboe DataShop Option EOD Summary rows for the chains given (the 15:45 and EOD snapshots the
    same quotes); `calcs=False` leaves out the greeks block, as the plain EOD Summary does."""
    parts = []
    for table, chain in (("spx_options", spx), ("vix_options", vix)):
        if chain is None or not len(chain):
            continue
        under = chain["underlying"] if table == "spx_options" else chain["future_price"]
        zero = np.zeros(len(chain))
        f = pd.DataFrame({
            "underlying_symbol": "^SPX" if table == "spx_options" else "^VIX", "quote_date": _iso(chain["date"]),
            "root": _roots(chain, table), "expiration": _iso(chain["expiry"]), "strike": chain["strike"],
            "option_type": chain["option_type"], "open": zero, "high": zero, "low": zero, "close": zero,
            "trade_volume": 0, "bid_size_1545": chain["bid_size"], "bid_1545": chain["bid"],
            "ask_size_1545": chain["ask_size"], "ask_1545": chain["ask"], "underlying_bid_1545": under,
            "underlying_ask_1545": under})
        if calcs:
            for c in vendors.DATASHOP_CALCS[:-1]:
                f[c] = under if c in ("implied_underlying_price_1545", "active_underlying_price_1545") else zero
        f = f.assign(bid_size_eod=chain["bid_size"], bid_eod=chain["bid"], ask_size_eod=chain["ask_size"],
                     ask_eod=chain["ask"], underlying_bid_eod=under, underlying_ask_eod=under, vwap=zero,
                     open_interest=0)
        if delivery_code:
            f["delivery_code"] = ""
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


def orats(spx: pd.DataFrame, us_dates: bool = False) -> pd.DataFrame:
    """ORATS SMV strikes: one row per (date, expiry, strike), the call's and put's quotes side by side."""
    keys = ["date", "expiry", "strike"]
    calls = spx[spx["option_type"] == "C"].set_index(keys)
    puts = spx[spx["option_type"] == "P"].set_index(keys)
    both = calls.join(puts, lsuffix="_c", rsuffix="_p", how="inner").reset_index()
    dates = _us if us_dates else _iso
    out = pd.DataFrame({c: 0.0 for c in vendors.ORATS}, index=both.index)
    out["ticker"] = _roots(both, "spx_options")
    out["tradeDate"], out["expirDate"] = dates(both["date"]), dates(both["expiry"])
    out["dte"] = (pd.to_datetime(both["expiry"]) - pd.to_datetime(both["date"])).dt.days
    out["strike"] = both["strike"]
    out["stockPrice"] = out["spotPrice"] = both["underlying_c"]
    for side, s in (("call", "c"), ("put", "p")):
        out[f"{side}BidPrice"], out[f"{side}AskPrice"] = both[f"bid_{s}"], both[f"ask_{s}"]
        out[f"{side}BidSize"], out[f"{side}AskSize"] = both[f"bid_size_{s}"], both[f"ask_size_{s}"]
        out[f"{side}Volume"] = out[f"{side}OpenInterest"] = 0
    out["quoteDate"] = out["snapShotDate"] = out["tradeDate"]
    out["updatedAt"], out["snapShotEstTime"] = "", "1545"
    return out[list(vendors.ORATS)]


def historical_option_data(spx: pd.DataFrame, newer: bool = False) -> pd.DataFrame:
    """HistoricalOptionData.com rows (`newer`: with OptionSymbol and the trailing AKA column)."""
    zero = np.zeros(len(spx))
    out = pd.DataFrame({
        "UnderlyingSymbol": "SPX", "UnderlyingPrice": spx["underlying"], "Exchange": "*",
        "OptionRoot": _roots(spx, "spx_options"), "OptionExt": "",
        "Type": np.where(spx["option_type"] == "C", "call", "put"), "Expiration": _us(spx["expiry"]),
        "DataDate": _us(spx["date"]), "Strike": spx["strike"], "Last": zero, "Bid": spx["bid"], "Ask": spx["ask"],
        "Volume": 0, "OpenInterest": 0, "IV": zero, "Delta": zero, "Gamma": zero, "Theta": zero, "Vega": zero})
    if newer:
        out.insert(4, "OptionSymbol", out["OptionRoot"] + pd.to_datetime(spx["expiry"]).dt.strftime("%y%m%d")
                   + out["Type"].str[0].str.upper() + (spx["strike"] * 1000).round().astype("int64").astype(str))
        out["AKA"] = ""
    return out


def cfe_history(futures: pd.DataFrame) -> pd.DataFrame:
    """CFE's VX history rows (`Trade Date,Futures,...`) for our `vix_futures` rows: codes such as
    `K (May 08)`, prices at 10x before 2007-03-26 as CFE published them, quotes dropped (CFE
    publishes none)."""
    from alvh_pipeline.sources.real_data import MULTIPLIER_CHANGE

    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    letter = futures["contract"].str[2]
    month = letter.map({c: i for i, c in enumerate(cal.MONTH_CODES)})
    code = letter + " (" + month.map(lambda m: months[m]) + " " + futures["contract"].str[3:] + ")"
    scale = np.where(pd.to_datetime(futures["date"]) < MULTIPLIER_CHANGE, 10.0, 1.0)
    settle = futures["settle"].to_numpy(float) * scale
    return pd.DataFrame({"Trade Date": pd.to_datetime(futures["date"]).dt.strftime("%-m/%-d/%Y"), "Futures": code,
                         "Open": settle, "High": settle, "Low": settle, "Close": settle, "Settle": settle,
                         "Change": 0, "Total Volume": futures["volume"], "EFP": 0,
                         "Open Interest": futures["open_interest"]})


def vix_history(index_levels: pd.DataFrame) -> pd.DataFrame:
    """Cboe's `VIX_History.csv` rows for the VIX rows of `index_levels`."""
    vix = index_levels[index_levels["index"] == "VIX"]
    return pd.DataFrame({"DATE": _us(vix["date"]), **{c.upper(): vix[c].round(2) for c in ("open", "high", "low",
                                                                                           "close")}})


def equity_basket(bars: pd.DataFrame) -> pd.DataFrame:
    """One long equity CSV (`date, symbol, open, high, low, close, volume`): no sector, no quotes."""
    return bars[["date", "symbol", "open", "high", "low", "close", "volume"]].assign(date=_iso(bars["date"]))


def write_zip(frame: pd.DataFrame, path: Path) -> Path:
    """`frame` as the one CSV inside `path` (a .zip named like the vendor's daily file)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.name.replace(".zip", ".csv"), buffer.getvalue())
    return path


def write_datashop_days(out: Path, dates, fetch, calcs: bool = True) -> list[Path]:
    """One `UnderlyingOptionsEODCalcs_<day>.zip` per day (SPX and VIX chains from `fetch(table,
    dates)`), in `out/spx_options/` with a hard link of each in `out/vix_options/` (one purchased
    file feeds both tables). Returns the files written."""
    spx_dir, vix_dir = out / "spx_options", out / "vix_options"
    spx_dir.mkdir(parents=True, exist_ok=True)
    vix_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for day in pd.DatetimeIndex(pd.to_datetime(list(dates))):
        spx, vix = fetch("spx_options", [day]), fetch("vix_options", [day])
        name = f"UnderlyingOptionsEOD{'Calcs' if calcs else ''}_{day.date()}.zip"
        path = write_zip(datashop(spx, vix, calcs=calcs), spx_dir / name)
        link = vix_dir / name
        link.unlink(missing_ok=True)
        link.hardlink_to(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    from alvh_pipeline.core.calendar import sessions_between
    from alvh_pipeline.core.market_sim import SimConfig
    from alvh_pipeline.sources import replay

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layout", choices=["cboe_datashop"], default="cboe_datashop")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    cfg = SimConfig()
    days = sessions_between(args.start, args.end)
    files = write_datashop_days(args.out, days, lambda table, ds: replay.generate(table, ds, cfg))
    print(f"wrote {len(files)} Cboe DataShop day file(s) under {args.out}/spx_options (linked in vix_options)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
