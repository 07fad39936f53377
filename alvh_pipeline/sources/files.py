"""The `files` source: a drop folder with one file per raw table (`<root>/<table>.csv`,
`<table>.csv.gz`, `<table>.zip` or `<table>.parquet`), or several under `<root>/<table>/` (`*.csv`,
`*.csv.gz`, `*.zip` holding one CSV, read in memory, `*.parquet`), in the documented raw contracts
(`schemas.CONTRACTS`) or a vendor layout recognised by its header (`sources/vendors.py`). A file
that does not fit raises `FilesSourceError` naming the file, the column and the (1-based data) row;
nothing is silently dropped, truncated or wrapped:

* integer columns: fractional values, values outside int64, `nan` / `inf` / `NA` and blanks are
  refused, naming the value as delivered (integral decimals such as `1200.0` are read, up to 2**53,
  where a float is still exact);
* `date` must be an NYSE session: a row dated on a weekend, an exchange holiday or outside the
  exchange calendar could never reach a partition, so it is refused like a blank date;
* timezone-aware timestamps (`2024-03-04T16:00:00-05:00`, `...Z`, or a tz-aware Parquet column) are
  converted to the exchange date (America/New_York) when that is also the date as written; an
  instant whose New York date differs from its written date (`2024-03-05T00:00:00Z` is 19:00 on the
  4th in New York: a date label or an instant?) is ambiguous and refused, naming the column and the
  first such value; a column mixing aware and naive values is refused;
* encodings: UTF-8 (with or without BOM) and UTF-16 *with* a byte-order mark are decoded; Latin-1 and
  other non-UTF-8 text, UTF-16 without BOM and binary content are refused, naming the line. Gzip is
  read from `.csv.gz` names; gzip content under a `.csv` name is refused ("rename to .csv.gz");
* empty files (0 bytes, or a header without rows) and unreadable Parquet files are refused;
* a symbolic link (file or directory) resolving outside the drop folder is refused, naming the link.

Messages never quote file content beyond header names, and those only for a file whose header looks
like the table (at least half the contract's columns); a row's value is quoted (truncated) only once
the header matched the contract exactly. Parser exceptions are never passed on (neither as text nor
as a chained exception: Dagster records both in the event log).

Each file is parsed and checked once per process per (path, device, inode, size, mtime): the frame is
kept in an LRU cache (up to 384 MiB of parsed frames: a year of daily vendor files), so a run over many
partitions reads a file once and a changed file again.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.lake import file_version
from alvh_pipeline.schemas import CONTRACTS, type_family
from alvh_pipeline.sources import vendors

EXCHANGE_TZ = "America/New_York"
SUFFIXES = (".csv", ".csv.gz", ".zip", ".parquet")  # .zip: one CSV inside (e.g. a vendor's daily file)
# pandas' default missing-value tokens: still null in float / str columns (as before), but read as
# text first so that an int or date column can name the value it refuses
NA_TOKENS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                       "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
_INT64_MAX = "9223372036854775807"  # decimal text of the int64 bounds, compared as digit strings
_INT64_MIN_ABS = "9223372036854775808"
_EXACT = 2.0**53  # beyond this a decimal read as float64 may already be off by one
# a time of day followed by an offset (or Z): a timezone-aware value; a bare date never matches
_AWARE = r"[T ]\d{1,2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_OFFSET = r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})?)$"
_CACHE_SIZE = 1024  # files, and at most _CACHE_BYTES of parsed frames: a year of daily vendor files stays parsed
_CACHE_BYTES = 384 * 2**20  # (a DataShop day's SPX chain is ~0.3 MB parsed) while a backfill's chunks read it


class FilesSourceError(ValueError):
    pass


def _show(value: object) -> str:
    """A delivered value for a message: repr, cut to 40 characters (a row is never dumped)."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


# ---------------------------------------------------------------------------------------------
# which files


def _inside(path: Path, real_root: Path, root: Path, want_file: bool) -> None:
    target = path.resolve()  # follows every link on the way, file or directory
    if not target.is_relative_to(real_root):
        raise FilesSourceError(f"{path}: symbolic link resolving outside the drop folder {root}: refused "
                               f"(copy the file into the folder)")
    if not target.exists():
        raise FilesSourceError(f"{path}: broken symbolic link")
    if want_file and not target.is_file():
        raise FilesSourceError(f"{path}: not a regular file")


def table_files(root: str | Path, table: str) -> list[Path]:
    root = Path(root)
    real_root = root.resolve()
    found = [p for s in SUFFIXES for p in [root / f"{table}{s}"] if p.exists() or p.is_symlink()]
    folder = root / table
    if folder.is_dir() or folder.is_symlink():
        _inside(folder, real_root, root, want_file=False)  # before listing what it points to
        if folder.is_dir():
            found += sorted(p for s in SUFFIXES for p in folder.glob(f"*{s}"))
    for p in found:
        _inside(p, real_root, root, want_file=True)
    return found


# ---------------------------------------------------------------------------------------------
# reading (errors are built inside `except`, raised outside it: no chained parser exception)


def _csv_encoding(head: bytes, path: Path) -> str:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"  # UTF-16 with a BOM is unambiguous: decode it
    if head[:3] == b"\xef\xbb\xbf":
        return "utf-8-sig"
    if b"\x00" in head:
        raise FilesSourceError(f"{path}: binary content or UTF-16 without a byte-order mark, not a UTF-8 "
                               f"CSV: save the file as UTF-8")
    return "utf-8"


def _encoding_message(path: Path, table: str, encoding: str, gz: bool) -> str:
    """Where the first undecodable byte is: line, data row and (when it is a contract column) column."""
    if gz:  # error path only: the whole file once more, to find the byte
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    else:
        data = path.read_bytes()
    try:
        data.decode(encoding)
        return f"{path}: cannot decode the file as {encoding}"
    except UnicodeDecodeError as exc:
        start = exc.start
    before = data[:start].decode(encoding, errors="replace")
    line = before.count("\n") + 1
    what = "UTF-16 text" if encoding == "utf-16" else "UTF-8 text (Latin-1 or another legacy encoding?)"
    if line == 1:
        return f"{path}: header row: not valid {what}: save the file as UTF-8"
    header = next(csv.reader([before.split("\n", 1)[0].strip("\r\ufeff")]), [])
    field = len(next(csv.reader([before[before.rfind("\n") + 1:]]), [""])) - 1
    name = header[field] if 0 <= field < len(header) else None
    col = f"column '{name}' " if name in CONTRACTS[table].column_names else ""  # only our own names
    return f"{path}: {col}row {line - 1} (line {line}): not valid {what}: save the file as UTF-8"


def _parser_message(path: Path, text: str) -> str:
    """pandas' ParserError can quote a line of the file: keep only its numbers."""
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if m:
        exp, line, saw = (int(g) for g in m.groups())
        return f"{path}: line {line}: {saw} fields where the header has {exp}"
    m = re.search(r"(?:line|row) (\d+)", text)
    return f"{path}: malformed CSV (an unclosed quote?)" + (f" near line {m.group(1)}" if m else "")


def _zip_member(path: Path) -> io.BytesIO:
    """The one CSV inside a .zip, read into memory (nothing unpacked to disk)."""
    message = None
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            csvs = [m for m in members if m.filename.lower().endswith(".csv")]
            if len(members) != 1 or len(csvs) != 1:
                message = (f"{path}: a zip must hold exactly one .csv file (it holds {len(members)} file(s), "
                           f"{len(csvs)} .csv)")
            else:
                data = zf.read(csvs[0])
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        message = f"{path}: not a readable zip file ({type(exc).__name__})"
    if message:
        raise FilesSourceError(message)
    return io.BytesIO(data)


# The last few files read, as read (before any table's mapping): one vendor file feeding two tables
# (a DataShop day: spx_options and vix_options) is read once. Keyed by file version and how it was read.
_reads: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_READS = 8  # the day being mapped for one option table, then the other (parsed frames are kept in `_cache`)


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    version = file_version(path)  # the file under any name (a hard link per folder)
    key = version + (tuple(lay.name for lay in vendors.layouts_for(table)),)
    with _lock:
        for k, frame in _reads.items():
            if k[:-1] == version and k[-1] and set(k[-1]) & set(key[-1]):
                return frame  # read for another table with a layout in common: the same read
    frame = _read_csv_file(path, table)
    if vendors.feeds_several_tables([str(c) for c in frame.columns], table):  # else no other table reads it
        with _lock:
            _reads[key] = frame
            while len(_reads) > _READS:
                _reads.popitem(last=False)
    return frame


def _read_csv_file(path: Path, table: str) -> pd.DataFrame:
    if path.name.endswith(".zip"):
        return _read_csv_bytes(_zip_member(path), path, table)
    gz = path.name.endswith(".gz")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise FilesSourceError(f"{path}: empty file (0 bytes): no header row")
    if gz != (head[:2] == b"\x1f\x8b"):
        raise FilesSourceError(f"{path}: gzip-compressed, rename to .csv.gz" if not gz
                               else f"{path}: not gzip-compressed, rename to .csv")
    message = None
    if gz:
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(4096)
        except (OSError, EOFError) as exc:
            message = f"{path}: corrupt gzip file ({type(exc).__name__})"
        if message:
            raise FilesSourceError(message)
    return _read_csv_bytes(path, path, table, head, gz)


def _read_csv_bytes(source: Path | io.BytesIO, path: Path, table: str, head: bytes | None = None,
                    gz: bool = False) -> pd.DataFrame:
    """`source` (a file, or a zip member in memory) as text columns; `path` names it in messages."""
    message = None
    if head is None:
        head = source.getvalue()[:4096]
        if not head:
            raise FilesSourceError(f"{path}: empty file (0 bytes): no header row")
    if head[:4] == b"PAR1":
        raise FilesSourceError(f"{path}: Parquet content under a CSV name, rename to .parquet")
    encoding = _csv_encoding(head, path)
    # a vendor layout with a disclaimer before its header (Cboe's vixcurrent.csv): skip it
    lines = head.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()[:4]
    skip = vendors.header_offset(lines, table)
    # every value as text: the contract decides what it may become (see `_coerce`); a vendor layout
    # naming its text columns has its numbers read as numbers (`vendors.Layout.text`)
    dtype = vendors.read_types(lines[skip] if len(lines) > skip else "", table)
    try:
        frame = pd.read_csv(source, dtype=dtype, keep_default_na=False, encoding=encoding,
                            compression="gzip" if gz else None, skiprows=skip)
    except pd.errors.EmptyDataError:
        message = f"{path}: empty file: no header row"
    except UnicodeError:
        message = _encoding_message(path, table, encoding, gz)
    except pd.errors.ParserError as exc:
        message = _parser_message(path, str(exc))
    except (OSError, EOFError, ValueError) as exc:
        message = f"{path}: cannot read the file ({type(exc).__name__})"
    if message:
        raise FilesSourceError(message)
    if frame.empty:
        raise FilesSourceError(f"{path}: header row but no data rows")
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise FilesSourceError(f"{path}: empty file (0 bytes)")
    message = None
    try:
        frame = pd.read_parquet(path)
    except (pa.ArrowException, OSError, EOFError, ValueError) as exc:
        message = f"{path}: not a readable Parquet file (corrupt, truncated or another format; {type(exc).__name__})"
    if message:
        raise FilesSourceError(message)
    if frame.empty:
        raise FilesSourceError(f"{path}: Parquet file without rows")
    return frame


# ---------------------------------------------------------------------------------------------
# the contract


def _check_header(columns: list[str], table: str, path: Path) -> None:
    expected = CONTRACTS[table].column_names
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if not missing and not extra:
        return
    if 2 * (len(expected) - len(missing)) >= len(expected):  # looks like the table: names may be shown
        raise FilesSourceError(
            f"{path}: columns do not match the raw contract of '{table}' (header row): "
            f"missing {missing}, unexpected {[_show(c)[1:-1] for c in extra[:20]]}; nor a vendor layout "
            f"(tried: {vendors.tried(table)})")
    # not the table at all (a stray or linked file): its first line may be anything, never show it
    raise FilesSourceError(
        f"{path}: header row does not look like '{table}' ({len(expected) - len(missing)} of {len(expected)} "
        f"contract columns, {len(columns)} fields; header not shown): expected columns {expected}, or a vendor "
        f"layout (tried: {vendors.tried(table)})")


def _refuse(path: Path, name: str, codes: np.ndarray, shown: pd.Series, reasons: dict[int, str]) -> None:
    """Raise for the first row with a nonzero code; `reasons[code]` may use {v} (the value as delivered)."""
    bad = np.flatnonzero(codes)
    if len(bad):
        i = int(bad[0])
        why = reasons[int(codes[i])].format(v=_show(shown.iloc[i]))
        raise FilesSourceError(f"{path}: column '{name}' row {i + 1}: {why} ({len(bad)} bad rows in the column)")


def _text(raw: pd.Series) -> pd.Series:
    """Text of a column (missing -> ''), for CSV and for Parquet columns of strings or objects."""
    if raw.dtype == object:
        raw = raw.where(raw.notna(), "").astype("str")  # date / datetime objects -> ISO text
    return raw.astype("str").fillna("")


def _to_float(raw: pd.Series, name: str, path: Path) -> pd.Series:
    if raw.dtype.kind in "fiub":
        return raw.astype("float64")
    text = _text(raw)
    conv = pd.to_numeric(text, errors="coerce")
    if conv.isna().any():  # missing stays NaN (the gate judges it); anything else unreadable is refused
        bad = conv.isna() & ~text.str.strip().isin(NA_TOKENS)
        _refuse(path, name, bad.to_numpy(), text, {1: "cannot read {v} as float"})
    return conv.astype("float64")


def _to_int(raw: pd.Series, name: str, nullable: bool, path: Path) -> pd.Series:
    if raw.dtype.kind in "iu":  # Parquet integers: only uint64 can leave the int64 range
        over = (raw > np.iinfo(np.int64).max).to_numpy() if raw.dtype.kind == "u" else np.zeros(len(raw), bool)
        _refuse(path, name, over.astype(int), raw, {1: "value {v} outside the int64 range"})
        return raw.astype("int64")
    if raw.dtype.kind == "f":  # Parquet floats in an int column: exact only when integral
        num = raw.to_numpy("float64")
        null = np.isnan(num) & nullable
        is_int_text = np.zeros(len(raw), bool)
        shown = raw
    else:
        shown = _text(raw)
        text = shown.str.strip()
        try:  # fast path: every value an integer within int64 (pandas then gives int64, exactly)
            conv = pd.to_numeric(text)
            if conv.dtype.kind == "i":
                return conv.astype("int64")
        except (ValueError, TypeError):
            pass
        null = text.isin(NA_TOKENS).to_numpy() & nullable
        blank = (text == "").to_numpy()
        is_int_text = text.str.fullmatch(r"[+-]?\d+").fillna(False).to_numpy(bool)
        digits = text.str.lstrip("+-").str.lstrip("0")
        neg = text.str.startswith("-").fillna(False).to_numpy(bool)
        n_dig = digits.str.len().to_numpy()
        over_text = is_int_text & ((n_dig > 19) | ((n_dig == 19) & np.where(
            neg, (digits > _INT64_MIN_ABS).to_numpy(bool), (digits > _INT64_MAX).to_numpy(bool))))
        num = pd.to_numeric(text.where(~is_int_text, "0"), errors="coerce").to_numpy("float64")
    finite = np.isfinite(num) & ~is_int_text
    frac = finite & (num != np.floor(num))
    over = finite & ~frac & (np.abs(num) >= 2.0**63)
    inexact = finite & ~frac & ~over & (np.abs(num) > _EXACT) & (raw.dtype.kind != "f")
    if raw.dtype.kind == "f":
        empty = unreadable = over_text = np.zeros(len(raw), bool)
        nonfinite = ~np.isfinite(num) & ~null
    else:
        empty = blank & ~null
        nonfinite = ~is_int_text & ~finite & ~blank & ~null & (np.isinf(num) | text.isin(NA_TOKENS).to_numpy())
        unreadable = ~is_int_text & ~finite & ~blank & ~null & ~nonfinite
    codes = np.select([empty, unreadable, nonfinite, frac, over | over_text, inexact], [1, 2, 3, 4, 5, 6], 0)
    _refuse(path, name, codes, shown, {
        1: "empty value in an integer column",
        2: "cannot read {v} as int",
        3: "non-finite value {v} in an integer column",
        4: "fractional value {v} in an integer column (it would be truncated)",
        5: "value {v} outside the int64 range",
        6: "value {v} is a decimal too large to read exactly: write it as an integer",
    })
    out = np.where(finite, num, 0).astype("int64")  # integral decimals, exact below 2**53
    if raw.dtype.kind != "f" and is_int_text.any():  # integer text, parsed exactly (range checked above)
        out[is_int_text] = pd.to_numeric(text[is_int_text]).to_numpy("int64")
    result = pd.Series(out, index=raw.index)
    if null.any():  # a nullable int column (none in the contracts today): keep its nulls
        result = result.astype("Int64")
        result[null] = pd.NA
    return result


def _exchange_date(utc: pd.Series, written: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The New York date of each instant, and where it differs from the date as written."""
    exch = utc.dt.tz_convert(EXCHANGE_TZ).dt.tz_localize(None).dt.normalize()
    return exch, (utc.notna() & (exch != written)).to_numpy()


def _to_date(raw: pd.Series, name: str, nullable: bool, path: Path) -> pd.Series:
    ambiguous_why = ("timezone-aware {v} is not on the same date in New York (the exchange date) as written: "
                     "ambiguous, deliver the exchange date")
    if isinstance(raw.dtype, pd.DatetimeTZDtype):  # Parquet: written date = wall date in the column's tz
        conv, ambiguous = _exchange_date(raw.dt.tz_convert("UTC"), raw.dt.tz_localize(None).dt.normalize())
        codes = np.where(raw.isna() & (not nullable), 1, np.where(ambiguous, 3, 0))
        _refuse(path, name, codes, raw, {1: "empty date", 3: ambiguous_why})
        return conv
    if raw.dtype.kind == "M":
        _refuse(path, name, (raw.isna() & (not nullable)).to_numpy().astype(int), raw, {1: "empty date"})
        return raw
    shown = _text(raw)
    text = shown.str.strip()
    null = text.isin(NA_TOKENS).to_numpy()
    aware = np.zeros(len(text), bool)
    longer = (text.str.len() > 10).to_numpy(bool)  # a bare date never carries an offset: skip the regex
    if longer.any():
        aware[longer] = text[longer].str.contains(_AWARE, regex=True).fillna(False).to_numpy(bool)
    aware &= ~null
    message = None
    try:
        naive = pd.to_datetime(text.where(~aware & ~null), errors="coerce", format="ISO8601")
        if isinstance(naive.dtype, pd.DatetimeTZDtype):
            raise ValueError("aware values not recognised as such")
    except (ValueError, TypeError):
        message = f"{path}: column '{name}': cannot read the column as dates (timezone offsets in an unexpected form?)"
    if message:
        raise FilesSourceError(message)
    if aware.any() and naive.notna().any():
        i, j = int(np.flatnonzero(aware)[0]), int(np.flatnonzero(naive.notna().to_numpy())[0])
        raise FilesSourceError(
            f"{path}: column '{name}' mixes timezone-aware and naive values: row {i + 1} {_show(shown.iloc[i])} "
            f"is aware, row {j + 1} {_show(shown.iloc[j])} is naive")
    ambiguous = np.zeros(len(raw), bool)
    conv = naive
    if aware.any():
        utc = pd.to_datetime(text.where(aware), utc=True, format="ISO8601", errors="coerce")
        off = text.where(aware).str.extract(_OFFSET)
        minutes = (off["hh"].astype("float64") * 60 + off["mm"].astype("float64").fillna(0)) \
            * np.where(off["sign"] == "-", -1, 1)
        minutes = minutes.where(off["z"].isna(), 0.0)
        written = (utc.dt.tz_localize(None) + pd.to_timedelta(minutes, unit="min")).dt.normalize()
        conv, ambiguous = _exchange_date(utc, written)
    unreadable = conv.isna().to_numpy() & ~null
    codes = np.select([null & (not nullable), unreadable, ambiguous], [1, 2, 3], 0)
    _refuse(path, name, codes, shown, {1: "empty date", 2: "cannot read {v} as date", 3: ambiguous_why})
    return conv


def _check_sessions(dates: pd.Series, path: Path) -> None:
    """A row dated on a non-session matches no partition and would vanish: refuse it instead."""
    day = dates.dt.normalize()
    bad = (~day.isin(all_sessions()) & day.notna()).to_numpy()
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    d, sessions = day.iloc[i], all_sessions()
    why = (f"a {d.day_name()}" if d.weekday() >= 5 else
           f"outside the exchange calendar {sessions[0].date()}..{sessions[-1].date()}"
           if not sessions[0] <= d <= sessions[-1] else "an exchange holiday or closure")
    raise FilesSourceError(f"{path}: column 'date' row {i + 1}: {d.date()} is not an NYSE session ({why}); "
                           f"its rows could never reach a partition ({int(bad.sum())} such rows)")


def _coerce(frame: pd.DataFrame, table: str, path: Path, text_file: bool = True) -> pd.DataFrame:
    """The frame in the contract's dtypes, or FilesSourceError. Vectorized per column."""
    contract = CONTRACTS[table]
    _check_header([str(c) for c in frame.columns], table, path)
    frame.columns = [str(c) for c in frame.columns]
    out, identifiers = {}, contract.identifier_patterns
    for name, typ, _ in contract.columns:
        fam, raw, nullable = type_family(typ), frame[name], name in contract.nullable
        if fam == "str":
            # CSV: '' and pandas' NA tokens are null, as with read_csv's defaults before; Parquet: nulls.
            # An identifier is a code as written: only a blank one is missing (the ticker NA is a ticker)
            text = _text(raw)
            blank = text.str.strip().eq("") if name in identifiers else text.isin(NA_TOKENS)
            null = blank if text_file else raw.isna()
            out[name] = raw.astype("str").where(~null, None)
        elif fam == "float":
            out[name] = _to_float(raw, name, path)
        elif fam == "int":
            out[name] = _to_int(raw, name, nullable, path)
        else:
            out[name] = _to_date(raw, name, nullable, path)
    result = pd.DataFrame(out)
    _check_sessions(result["date"], path)
    return result


# ---------------------------------------------------------------------------------------------
# once per file version per process

_cache: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_sizes: dict[tuple, int] = {}  # bytes of each cached frame
_lock = threading.Lock()


def _file_key(path: Path, table: str, vendor: str = "") -> tuple:
    return (str(path.resolve()), f"{table}:{vendor}", *file_version(path))


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _sizes.clear()
        _days.clear()
        _reads.clear()


def _parse(path: Path, table: str, vendor: str = "") -> pd.DataFrame:
    if path.name.endswith(".parquet"):
        return _coerce(_read_parquet(path), table, path, text_file=False)
    frame, message = _read_csv(path, table), None
    try:  # a vendor's layout (recognised by its header) mapped to the contract, still as text
        frame = vendors.to_contract(frame, table, path, vendor)
    except (ValueError, KeyError) as exc:
        message = f"{path}: {exc}" if str(path) not in str(exc) else str(exc)
    if message:
        raise FilesSourceError(message)
    return _coerce(frame, table, path)


def read_file(path: Path, table: str, vendor: str = "") -> pd.DataFrame:
    """One drop file in the contract, parsed once per (path, device, inode, size, mtime). Callers must
    not modify the frame in place (it is shared; pandas' copy-on-write protects derived frames).
    `vendor`: a layout's name, forcing that layout where it serves the table (`vendors.to_contract`)."""
    key = _file_key(path, table, vendor)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    frame = _parse(path, table, vendor)
    if _file_key(path, table, vendor) == key:  # unchanged while it was read: safe to reuse
        with _lock:
            for old in [k for k in _cache if k[:2] == key[:2]]:  # an older version of this file
                del _cache[old]
                _sizes.pop(old, None)
            _cache[key] = frame
            _sizes[key] = int(frame.memory_usage(index=False).sum())
            while len(_cache) > _CACHE_SIZE or (len(_cache) > 1 and sum(_sizes.values()) > _CACHE_BYTES):
                _sizes.pop(_cache.popitem(last=False)[0], None)
    return frame


def _files_or_fail(root: str | Path, table: str) -> list[Path]:
    files = table_files(root, table)
    if not files:
        raise FilesSourceError(f"files source: no file for table '{table}' under {root} "
                               f"(expected {table}.csv, {table}.csv.gz, {table}.zip, {table}.parquet or "
                               f"{table}/*.csv)")
    return files


def read_table_files(root: str | Path, table: str) -> pd.DataFrame:
    return pd.concat([read_file(p, table) for p in _files_or_fail(root, table)], ignore_index=True)


# file version -> the sessions it holds: small, kept for every file seen, so a partition reads (and
# re-parses, once its frame has left the LRU cache) only the files holding its days: a folder of
# 250 daily files is parsed about once per run, not once per partition
_days: dict[tuple, np.ndarray] = {}


def _file_days(path: Path, table: str, vendor: str) -> tuple[pd.DataFrame | None, np.ndarray]:
    key = _file_key(path, table, vendor)
    with _lock:
        days = _days.get(key)
    if days is not None:
        return None, days
    frame = read_file(path, table, vendor)
    days = np.unique(frame["date"].dt.normalize().to_numpy())
    with _lock:
        for old in [k for k in _days if k[:2] == key[:2]]:
            del _days[old]
        _days[key] = days
    return frame, days


def generate(table: str, dates: Sequence, root: str | Path, vendor: str = "") -> pd.DataFrame:
    wanted = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize()
    frames, paths = [], []
    for path in _files_or_fail(root, table):
        frame, days = _file_days(path, table, vendor)
        if not np.isin(days, wanted.to_numpy()).any():
            continue
        frame = read_file(path, table, vendor) if frame is None else frame
        # filter each cached frame before concatenating: a partition never copies the whole table
        frames.append(frame[frame["date"].dt.normalize().isin(wanted)])
        paths.append(path)
    if not frames:  # the columns of the table, no rows (a day the folder does not hold)
        return read_file(_files_or_fail(root, table)[0], table, vendor).iloc[0:0].reset_index(drop=True)
    if len(frames) > 1:
        _refuse_rows_in_two_files(frames, paths, table)
    return pd.concat(frames, ignore_index=True)


def _refuse_rows_in_two_files(frames: list[pd.DataFrame], paths: list[Path], table: str) -> None:
    """A row (same key) delivered by two files (`rates.csv` and `rates/part1.csv`) is refused naming
    both files: which one is right is the user's call, not a duplicated key inside one delivery
    (that one the gate reports and quarantines). Files splitting a day by key are fine."""
    keys = list(CONTRACTS[table].keys)
    which = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    both = pd.concat([f[keys] for f in frames], ignore_index=True).assign(_file=which).drop_duplicates()
    clash = both[both.duplicated(keys, keep=False)]
    if len(clash):
        first = clash.iloc[0]
        named = sorted({str(paths[i]) for i in clash.loc[(clash[keys] == first[keys]).all(axis=1), "_file"]})
        day = pd.Timestamp(first["date"]).strftime("%Y-%m-%d")
        raise FilesSourceError(
            f"table '{table}': {clash[keys].drop_duplicates().shape[0]} row key(s) ({', '.join(keys)}) delivered by "
            f"more than one file, first {day} in {' and '.join(named)}; keep one of them")
