"""One test per class of bad input: the gate blocks the partition, the message names table,
column, partition and count, the offending rows are kept in quarantine with a reason, the raw
file is untouched and validated/* refuses to publish it."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.quality.gate import NotValidatedError, publish_validated, run_gate
from alvh_pipeline.sources import files, synthetic

DAY = "2024-03-05"
PREV = "2024-03-04"


def _raw(lake, table, frame, day=DAY):
    lake.write_partition("raw", table, day, frame)


def assert_blocked(lake, table, column, count, day=DAY, expectation=None):
    gate = run_gate(lake, table, [day])
    msg = gate.message()
    assert not gate.passed, msg
    assert f"raw/{table}" in msg and day in msg and column in msg, msg
    failure = next(f for f in gate.report.failures if column in f.column and
                   (expectation is None or f.rule == expectation))
    assert failure.rows == count, msg
    assert day in failure.partitions
    with pytest.raises(NotValidatedError, match=day):
        publish_validated(lake, table, [day])
    assert not lake.exists("validated", table, day)
    assert lake.exists("raw", table, day)  # nothing lost
    return gate


def quarantined(lake, table, day=DAY) -> pd.DataFrame:
    return lake.read_partition("quarantine", table, day)


def test_clean_partition_passes_and_publishes(lake):
    _raw(lake, "vix_futures", synthetic.generate("vix_futures", [DAY]))
    gate = run_gate(lake, "vix_futures", [DAY])
    assert gate.passed, gate.message()
    assert publish_validated(lake, "vix_futures", [DAY]) == {DAY: 8}


def test_missing_column(lake):
    _raw(lake, "equity_bars", synthetic.generate("equity_bars", [DAY]).drop(columns=["ask"]))
    gate = assert_blocked(lake, "equity_bars", "ask", 103, expectation="expect_table_columns_to_match_set")
    assert "missing column" in gate.message()
    assert len(quarantined(lake, "equity_bars")) == 103  # table-level: the whole partition is kept


def test_wrong_dtype(lake):
    f = synthetic.generate("equity_bars", [DAY])
    f["close"] = f["close"].astype(str)
    _raw(lake, "equity_bars", f)
    assert_blocked(lake, "equity_bars", "close", 103, expectation="expect_column_values_to_be_of_type")


@pytest.mark.parametrize("bad", [np.nan, 0.0, -3.0])
def test_nan_zero_negative_price(lake, bad):
    f = synthetic.generate("equity_bars", [DAY])
    f.loc[[3, 7], "close"] = bad
    _raw(lake, "equity_bars", f)
    expectation = "expect_column_values_to_not_be_null" if np.isnan(bad) else "expect_column_values_to_be_between"
    assert_blocked(lake, "equity_bars", "close", 2, expectation=expectation)
    q = quarantined(lake, "equity_bars")
    assert set(q["symbol"]) >= {f.loc[3, "symbol"], f.loc[7, "symbol"]}
    assert q["reason"].str.contains("close").all()


def test_crossed_quote(lake):
    f = synthetic.generate("vix_futures", [DAY])
    f.loc[2, "bid"] = f.loc[2, "ask"] + 0.5
    _raw(lake, "vix_futures", f)
    assert_blocked(lake, "vix_futures", "bid,ask", 1)
    q = quarantined(lake, "vix_futures")
    assert list(q["contract"]) == [f.loc[2, "contract"]]
    assert "crossed" in q["reason"].iloc[0]


def test_duplicated_key(lake):
    f = synthetic.generate("vix_futures", [DAY])
    _raw(lake, "vix_futures", pd.concat([f, f.iloc[[1]]], ignore_index=True))
    assert_blocked(lake, "vix_futures", "date,contract", 2)


def test_rows_dated_outside_partition(lake):
    f = synthetic.generate("breadth", [DAY, PREV])
    _raw(lake, "breadth", f)  # both days' rows delivered into one partition
    assert_blocked(lake, "breadth", "date", 1)
    assert pd.Timestamp(quarantined(lake, "breadth")["date"].iloc[0]) == pd.Timestamp(PREV)


def test_stale_quotes_over_threshold(lake):
    prev = synthetic.generate("equity_bars", [PREV])
    _raw(lake, "equity_bars", prev, PREV)
    today = synthetic.generate("equity_bars", [DAY])
    stale = today.copy()
    cols = ["close", "bid", "ask", "volume"]
    stale.loc[:49, cols] = prev.loc[:49, cols].to_numpy()  # 50 of 103 quotes unchanged (> 20 %)
    _raw(lake, "equity_bars", stale)
    assert_blocked(lake, "equity_bars", "close,bid,ask,volume", 50)
    # a few unchanged quotes (under the threshold) are normal and pass
    few = today.copy()
    few.loc[:4, cols] = prev.loc[:4, cols].to_numpy()
    _raw(lake, "equity_bars", few)
    assert run_gate(lake, "equity_bars", [DAY]).passed


def test_empty_partition(lake):
    _raw(lake, "rates", synthetic.generate("rates", [DAY]).iloc[0:0])
    gate = run_gate(lake, "rates", [DAY])
    assert not gate.passed
    assert "partition is empty" in gate.message() and DAY in gate.message()
    with pytest.raises(NotValidatedError):
        publish_validated(lake, "rates", [DAY])


def test_empty_day_inside_a_range(lake):
    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    for d in days:
        rows = synthetic.generate("rates", [d])
        _raw(lake, "rates", rows.iloc[0:0] if d == DAY else rows, d)
    gate = run_gate(lake, "rates", days)
    assert gate.report.failed_partitions == [DAY]
    with pytest.raises(NotValidatedError, match=DAY):
        publish_validated(lake, "rates", days)


def test_corrupt_parquet_in_lake(lake):
    _raw(lake, "index_levels", synthetic.generate("index_levels", [DAY]))
    path = lake.partition_path("raw", "index_levels", DAY)
    path.write_bytes(path.read_bytes()[:40])  # truncated file
    gate = run_gate(lake, "index_levels", [DAY])
    assert not gate.passed
    assert "unreadable raw file" in gate.message() and DAY in gate.message()
    qdir = lake.partition_path("quarantine", "index_levels", DAY).parent
    assert (qdir / "unreadable-part-0.parquet").read_bytes() == path.read_bytes()
    assert "index_levels" in (qdir / "reason.txt").read_text()


def test_vix_futures_at_old_10x_multiplier(lake):
    f = synthetic.generate("vix_futures", [DAY])
    for c in ["settle", "bid", "ask"]:
        f[c] = f[c] * 10
    _raw(lake, "vix_futures", f)
    gate = assert_blocked(lake, "vix_futures", "settle", 8)
    assert "10x multiplier" in gate.message()


def test_option_quote_violating_no_arbitrage_bounds(lake):
    f = synthetic.generate("spx_options", [DAY])
    deep_call = f[(f.option_type == "C")].sort_values("strike").index[0]  # deep ITM call
    f.loc[deep_call, ["bid", "ask"]] = [0.5, 0.6]  # far below intrinsic D·(F-K)
    _raw(lake, "spx_options", f)
    assert_blocked(lake, "spx_options", "bid,ask,strike,underlying", 1)


def files_source_error(folder, table: str, frame: pd.DataFrame) -> str:
    """Drop `frame` as the `files` source's CSV for `table`; the error it must raise, as text."""
    frame.to_csv(folder / f"{table}.csv", index=False)
    with pytest.raises(files.FilesSourceError) as err:
        files.generate(table, [DAY], folder)
    return str(err.value)


def test_files_csv_with_renamed_column(tmp_path):
    renamed = synthetic.generate("rates", [DAY]).rename(columns={"tbill_3m": "tbill"})
    text = files_source_error(tmp_path, "rates", renamed)
    assert "rates.csv" in text and "tbill_3m" in text and "tbill" in text and "header row" in text


def test_files_csv_with_unparseable_value_names_row(tmp_path):
    f = synthetic.generate("vix_futures", [DAY, PREV])
    f["settle"] = f["settle"].astype(object)
    f.loc[5, "settle"] = "twenty"
    assert "vix_futures.csv: column 'settle' row 6" in files_source_error(tmp_path, "vix_futures", f)


def test_row_of_another_day_inside_a_range_is_caught(lake):
    days = ["2024-03-04", "2024-03-05"]
    first = synthetic.generate("equity_bars", [days[0]])
    second = synthetic.generate("equity_bars", [days[1]])
    moved = second.iloc[[0]]  # symbol S000's 03-05 row delivered inside the 03-04 file
    _raw(lake, "equity_bars", pd.concat([first[first.symbol != "S000"], moved], ignore_index=True), days[0])
    _raw(lake, "equity_bars", second.iloc[1:], days[1])
    gate = run_gate(lake, "equity_bars", days)
    failure = next(f for f in gate.report.failures if f.column == "date")
    assert failure.partitions == [days[0]] and failure.rows == 1


def test_stale_days_do_not_block_a_clean_day_in_the_same_range(lake):
    days = ["2024-03-05", "2024-03-06", "2024-03-07"]
    prev = synthetic.generate("index_levels", [PREV])
    _raw(lake, "index_levels", prev, PREV)
    _raw(lake, "index_levels", prev.assign(date=pd.Timestamp(days[0])), days[0])  # fully stale
    _raw(lake, "index_levels", prev.assign(date=pd.Timestamp(days[1])), days[1])  # fully stale
    clean = synthetic.generate("index_levels", [days[2]])
    _raw(lake, "index_levels", clean, days[2])
    gate = run_gate(lake, "index_levels", days)
    assert gate.report.failed_partitions == days[:2], gate.message()


def test_infinite_price_is_blocked(lake):
    f = synthetic.generate("equity_bars", [DAY])
    f.loc[4, ["bid", "ask"]] = np.inf
    _raw(lake, "equity_bars", f)
    gate = run_gate(lake, "equity_bars", [DAY])
    assert not gate.passed and "finite" in gate.message()


def test_incomplete_partition_against_the_previous_session(lake):
    _raw(lake, "equity_bars", synthetic.generate("equity_bars", [PREV]), PREV)
    _raw(lake, "equity_bars", synthetic.generate("equity_bars", [DAY]).iloc[:3])
    gate = run_gate(lake, "equity_bars", [DAY])
    assert not gate.passed and "incomplete partition: 3 rows, the session before had 103" in gate.message()


def test_raw_rewritten_after_its_verdict_is_not_published(lake):
    _raw(lake, "rates", synthetic.generate("rates", [DAY]))
    assert run_gate(lake, "rates", [DAY]).passed
    _raw(lake, "rates", synthetic.generate("rates", [DAY]).assign(tbill_3m=0.2))  # rewritten, never checked
    with pytest.raises(NotValidatedError, match="raw changed since"):
        publish_validated(lake, "rates", [DAY])


def test_files_row_without_a_date_is_an_error_not_a_dropped_row(tmp_path):
    f = synthetic.generate("rates", [DAY, PREV])
    f["date"] = f["date"].astype(str)
    f.loc[1, "date"] = ""
    assert "rates.csv: column 'date' row 2" in files_source_error(tmp_path, "rates", f)


# ---- C. a duplicated key on any day but the last is a normal failure, not a crash ----------------------------

def _verdict(lake, table, day):
    from alvh_pipeline.quality import gate

    return lake.read_json(gate.VERDICTS, table, gate.verdict_name(day))


@pytest.mark.parametrize(("table", "key"), [("equity_bars", "date,symbol"), ("vix_futures", "date,contract"),
                                             ("index_levels", "date,index")])
def test_duplicated_key_before_the_last_day_is_refused_with_quarantine_and_verdicts(lake, table, key):
    """Class C: the stale-quote rule matched each row with the key's earlier rows; a duplicated key
    on a day followed by another day in the batch fanned that merge out and crashed the gate (no
    quarantine, no verdicts). Now the unique-key expectation reports it like any failure."""
    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    first = synthetic.generate(table, [days[0]])
    _raw(lake, table, pd.concat([first, first.iloc[[1, 2]]], ignore_index=True), days[0])
    for d in days[1:]:
        _raw(lake, table, synthetic.generate(table, [d]), d)
    gate = run_gate(lake, table, days)
    assert gate.report.failed_partitions == [days[0]], gate.message()
    failure = next(f for f in gate.report.failures if f.column == key)
    assert failure.rows == 4 and "duplicated key" in failure.why
    assert len(quarantined(lake, table, days[0])) >= 4
    assert not lake.exists("quarantine", table, days[1])
    assert [_verdict(lake, table, d)["passed"] for d in days] == [False, True, True]
    with pytest.raises(NotValidatedError, match=days[0]):
        publish_validated(lake, table, days)
    assert set(publish_validated(lake, table, days[1:])) == set(days[1:])


def test_duplicated_key_in_the_session_before_does_not_crash_or_block_today(lake):
    """Class C, history side: the previous session's raw file (read as history) has a duplicated key."""
    prev = synthetic.generate("equity_bars", [PREV])
    _raw(lake, "equity_bars", pd.concat([prev, prev.iloc[[0]]], ignore_index=True), PREV)
    _raw(lake, "equity_bars", synthetic.generate("equity_bars", [DAY]))
    gate = run_gate(lake, "equity_bars", [DAY])
    assert gate.passed, gate.message()
    assert _verdict(lake, "equity_bars", DAY)["passed"] is True


def test_a_rule_that_raises_is_a_failure_of_every_partition_not_a_crash(lake, monkeypatch):
    """Class C, generalised: whatever a rule raises on malformed data, the gate still quarantines
    and writes its verdicts (fail closed), naming the rule and the error."""
    from alvh_pipeline.quality import rules

    def broken(df, ctx):
        raise ValueError("cannot reindex on an axis with duplicate labels")

    bad = rules.RowRule("_ohlc_consistent", ("open", "high", "low", "close"), "low <= open, close <= high", broken)
    monkeypatch.setitem(rules.TABLE_RULES, "index_levels",
                        [bad if r.name == "_ohlc_consistent" else r for r in rules.TABLE_RULES["index_levels"]])
    _raw(lake, "index_levels", synthetic.generate("index_levels", [DAY]))
    gate = run_gate(lake, "index_levels", [DAY])
    assert not gate.passed
    assert "rule _ohlc_consistent could not be computed (ValueError: cannot reindex" in gate.message()
    assert _verdict(lake, "index_levels", DAY)["passed"] is False
    assert len(quarantined(lake, "index_levels")) == 3


def test_a_raw_file_is_read_once_per_process_until_it_is_replaced(tmp_path, monkeypatch):
    """The gate, its peers' rules and `publish_validated` read a partition from one read of its
    bytes; a replaced file (a re-delivery: a new inode) is read again, so a verdict never publishes
    bytes it did not hash."""
    from alvh_pipeline.lake import Lake
    from alvh_pipeline.quality import gate

    lake = Lake(str(tmp_path / "lake"))
    lake.write_partition("raw", "rates", "2024-03-05", synthetic.generate("rates", ["2024-03-05"]))
    reads = []
    real = Lake.read_partition_bytes
    monkeypatch.setattr(Lake, "read_partition_bytes", lambda self, *a: reads.append(a) or real(self, *a))
    first = gate.read_raw_arrow(lake, "rates", "2024-03-05")
    assert gate.read_raw_arrow(lake, "rates", "2024-03-05") is first and len(reads) == 1
    changed = synthetic.generate("rates", ["2024-03-05"]).assign(tbill_3m=0.05)
    lake.write_partition("raw", "rates", "2024-03-05", changed)
    digest, rows = gate.read_raw_arrow(lake, "rates", "2024-03-05")
    assert len(reads) == 2 and digest != first[0] and rows.column("tbill_3m").to_pylist() == [0.05]


def test_the_ticker_na_is_a_ticker_not_a_missing_value(tmp_path, lake):
    """Issue 21.3: a CSV row for Nordic American Tankers (`NA`) is read as the symbol 'NA' and
    passes; a blank symbol is still missing and is refused as a null."""
    frame = synthetic.generate("equity_bars", [DAY])
    frame.loc[0, "symbol"] = "NA"
    frame.to_csv(tmp_path / "equity_bars.csv", index=False)
    files.clear_cache()
    read = files.generate("equity_bars", [DAY], tmp_path)
    assert read.loc[0, "symbol"] == "NA"
    _raw(lake, "equity_bars", read)
    assert run_gate(lake, "equity_bars", [DAY]).passed
    frame.loc[0, "symbol"] = " "
    frame.to_csv(tmp_path / "equity_bars.csv", index=False)
    files.clear_cache()
    _raw(lake, "equity_bars", files.generate("equity_bars", [DAY], tmp_path))
    assert_blocked(lake, "equity_bars", "symbol", 1)


@pytest.mark.parametrize(("table", "column"), [("equity_bars", "symbol"), ("fundamentals", "symbol"),
                                               ("vix_futures", "contract"), ("index_levels", "index"),
                                               ("spx_options", "option_type"), ("breadth", "exchange")])
def test_formula_text_in_an_identifier_is_refused_and_shown_inert(lake, table, column):
    """Issue 21.5: an identifier (symbol, contract, root, code) must match its pattern: a delivered
    spreadsheet formula is refused with the column named, and the check's sample rows show it with
    a leading apostrophe (never as a cell a spreadsheet would evaluate)."""
    frame = synthetic.generate(table, [DAY])
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = "=HYPERLINK(\"http://x\",\"a\")"
    _raw(lake, table, frame)
    gate = assert_blocked(lake, table, column, 1)
    shown = [row[column] for f in gate.report.failures if f.column == column for row in f.sample]
    assert shown and all(v == "'=HYPERLINK(\"http://x\",\"a\")" for v in shown)
    assert quarantined(lake, table)[column].tolist()[:1] == ["=HYPERLINK(\"http://x\",\"a\")"]  # kept as delivered


def test_free_text_is_kept_and_made_inert_only_where_shown():
    from alvh_pipeline.core.check_report import inert_text, sample_records

    assert [inert_text(v) for v in ["=cmd|' /C calc'!A0", "+1", "-x", "@SUM(A1)", "Energy", -3.5, None]] == [
        "'=cmd|' /C calc'!A0", "'+1", "'-x", "'@SUM(A1)", "Energy", -3.5, None]
    rows = pd.DataFrame({"sector": ["=1+1", "Utilities"], "close": [-1.0, 2.0]})
    assert sample_records(rows) == [{"sector": "'=1+1", "close": -1.0}, {"sector": "Utilities", "close": 2.0}]


# ---- issue 21.2: vendor mistakes that passed --------------------------------------------------------------

def _history_sessions(n: int, before: str = DAY) -> list[str]:
    from alvh_pipeline.core.calendar import all_sessions

    s = all_sessions()
    return [d.strftime("%Y-%m-%d") for d in s[s < pd.Timestamp(before)][-n:]]


@pytest.mark.parametrize("table", ["spx_options", "vix_options", "breadth"])
def test_a_day_re_delivered_from_the_day_before_is_refused(lake, table):
    """A stale delivery re-dated: every row of DAY is PREV's (keys and quotes), only the date moved.
    The row-level stale rule covered equity quotes only; a chain is judged as a whole day."""
    prev = synthetic.generate(table, [PREV])
    _raw(lake, table, prev, PREV)
    _raw(lake, table, synthetic.generate(table, [DAY]))
    assert run_gate(lake, table, [DAY]).passed  # a real next day: not a repeat
    _raw(lake, table, prev.assign(date=pd.Timestamp(DAY)))
    gate = assert_blocked(lake, table, "bid" if "options" in table else "advancers", len(prev),
                          expectation="expect_column_values_to_be_in_set")
    assert "re-delivered" in gate.message()


@pytest.mark.parametrize(("table", "columns"), [("equity_bars", ["volume"]),
                                                ("vix_futures", ["volume", "open_interest"]),
                                                ("breadth", ["up_volume", "down_volume"])])
def test_a_unit_change_across_the_whole_delivery_is_refused_against_the_tables_history(lake, table, columns):
    """Volumes delivered in lots of 100 on every day of a batch: each day agrees with the others,
    so only the table's own history (the sessions before the delivery) shows it."""
    for d in _history_sessions(5):
        _raw(lake, table, synthetic.generate(table, [d]), d)
    days = [DAY]
    batch = synthetic.generate(table, days)
    _raw(lake, table, batch)
    assert run_gate(lake, table, days).passed
    lots = batch.copy()
    for c in columns:
        lots[c] = lots[c] // 100
    _raw(lake, table, lots)
    gate = assert_blocked(lake, table, columns[0], len(batch), expectation="expect_column_values_to_be_in_set")
    assert "unit change" in gate.message()


def test_a_curve_month_with_another_months_price_refuses_both_tables_naming_each_other(lake):
    """VX M1 delivered with M4's settle: the curve alone looks fine and the (good) VIX chain
    disagrees with it. One day cannot say which table is wrong, so both are refused, each naming
    the other, and neither is published."""
    fut, opt = synthetic.generate("vix_futures", [DAY]), synthetic.generate("vix_options", [DAY])
    m1, m4 = fut.index[fut["month_index"] == 1][0], fut.index[fut["month_index"] == 4][0]
    assert abs(np.log(fut.loc[m4, "settle"] / fut.loc[m1, "settle"])) > 0.05  # another month's price shows
    _raw(lake, "vix_futures", fut)
    _raw(lake, "vix_options", opt)
    assert run_gate(lake, "vix_futures", [DAY]).passed and run_gate(lake, "vix_options", [DAY]).passed
    fut.loc[m1, "settle"] = fut.loc[m4, "settle"]
    _raw(lake, "vix_futures", fut)
    futures_gate = assert_blocked(lake, "vix_futures", "settle", 1, expectation="expect_column_values_to_be_in_set")
    options_gate = assert_blocked(lake, "vix_options", "future_price",
                                  int((opt["expiry"] == fut.loc[m1, "expiry"]).sum()),
                                  expectation="expect_column_values_to_be_in_set")
    assert "raw/vix_options" in futures_gate.message() and "raw/vix_futures" in options_gate.message()
