"""Vendor file layouts the `files` source reads (issue 19), recognised by their header row, each
mapped to a raw contract (`schemas.CONTRACTS`) in one table-driven place. A mapping turns the
vendor's text columns into the contract's columns, still as text, so every rule of the `files`
source (sessions, integers, encodings) and of the gate applies after mapping, as to our own files.

Layouts so far (table `index_levels`):

- `cboe_index_history`: Cboe's `<INDEX>_History.csv` (e.g. `VIX_History.csv`), header
  `DATE,OPEN,HIGH,LOW,CLOSE`, dates `MM/DD/YYYY`; the index is the file name's part before
  `_History`, upper case.
- `cboe_vixcurrent`: Cboe's older `vixcurrent.csv`: a disclaimer line, then
  `Date,VIX Open,VIX High,VIX Low,VIX Close`; the index is VIX.

Every mapped row is `provenance = real`. A file whose header is neither the contract nor a layout
for its table is refused naming the layouts tried.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alvh_pipeline.schemas import CONTRACTS


@dataclass(frozen=True)
class Layout:
    name: str
    table: str
    header: tuple[str, ...]  # the vendor's columns, in the vendor's spelling (compared exactly, in any order)
    to_contract: Callable[[pd.DataFrame, Path], pd.DataFrame]  # text in, the contract's columns as text out
    preamble: int = 0  # lines before the header (a disclaimer)


def _us_dates(raw: pd.Series) -> pd.Series:
    """Cboe's M/D/YYYY dates as ISO text; a value that is not such a date is kept as delivered, so
    the `files` source refuses it naming the value."""
    parsed = pd.to_datetime(raw, format="%m/%d/%Y", errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), raw)


def _index_rows(frame: pd.DataFrame, index: str, columns: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame({"date": _us_dates(frame[columns["date"]]), "index": index})
    for ours in ("open", "high", "low", "close"):
        out[ours] = frame[columns[ours]]
    out["provenance"] = "real"
    return out[CONTRACTS["index_levels"].column_names]


def _index_of(path: Path) -> str:
    """`VIX_History.csv` -> VIX (Cboe names its index histories `<INDEX>_History.csv`)."""
    stem = path.name.split(".", 1)[0]
    match = re.match(r"^([A-Za-z0-9]+)_History$", stem)
    if not match:
        raise ValueError(f"{path}: a Cboe index history is named <INDEX>_History.csv (e.g. VIX_History.csv), "
                         f"so the index it holds can be told; rename the file")
    return match.group(1).upper()


LAYOUTS: tuple[Layout, ...] = (
    Layout("cboe_index_history", "index_levels", ("DATE", "OPEN", "HIGH", "LOW", "CLOSE"),
           lambda f, p: _index_rows(f, _index_of(p), {"date": "DATE", "open": "OPEN", "high": "HIGH",
                                                      "low": "LOW", "close": "CLOSE"})),
    Layout("cboe_vixcurrent", "index_levels", ("Date", "VIX Open", "VIX High", "VIX Low", "VIX Close"),
           lambda f, p: _index_rows(f, "VIX", {"date": "Date", "open": "VIX Open", "high": "VIX High",
                                               "low": "VIX Low", "close": "VIX Close"}), preamble=1),
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


def detect(columns: list[str], table: str) -> Layout | None:
    """The layout whose header is exactly `columns` (any order, surrounding blanks ignored), or None."""
    got = {c.strip() for c in columns}
    for lay in layouts_for(table):
        if got == set(lay.header):
            return lay
    return None


def tried(table: str) -> str:
    names = [lay.name for lay in layouts_for(table)]
    return ", ".join(names) if names else "none for this table"


def to_contract(frame: pd.DataFrame, table: str, path: Path) -> pd.DataFrame:
    """`frame` (text, as read) in the contract's columns: unchanged when it already has them; mapped
    when its header is a known layout of `table`; else unchanged (the contract check refuses it and
    names the layouts tried)."""
    columns = [str(c) for c in frame.columns]
    if set(columns) == set(CONTRACTS[table].column_names):
        return frame
    lay = detect(columns, table)
    if lay is None:
        return frame
    frame = frame.rename(columns={c: c.strip() for c in columns})
    return lay.to_contract(frame, path)
