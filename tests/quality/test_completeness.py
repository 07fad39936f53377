"""Class B of issue 7, completeness judged against what a table should hold, not only against the
session before: the VX contract calendar, the symbol universe (the previous delivery, the same
day's fundamentals / equity bars, the ETFs), required keys (SPX / COMP / VIX, the macro event
types), the typical size of a chain (median of the sessions before, and a documented floor when no
session before is known). A failure blocks the whole partition: it is quarantined and validated/
keeps its last good version. Real (replay) and synthetic deliveries pass.

Gate-level cases run `run_gate` on a lake with no session before (the case that used to pass
silently); cases with many sessions of history or a peer table call `validate_frame` as the gate
will once it passes them (validate.history_sessions / PEER_TABLES).
"""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.quality.gate import NotValidatedError, publish_validated, run_gate
from alvh_pipeline.quality.validate import PEER_TABLES, history_columns, history_sessions, validate_frame
from alvh_pipeline.schemas import RAW_TABLES
from alvh_pipeline.sources import replay, synthetic

DAY = "2024-03-05"
PREV = "2024-03-04"


def _validate(table, frame, days, history=None, peers=None):
    days = [days] if isinstance(days, str) else list(days)
    return validate_frame(table, frame, days, history, peers=peers)


def _failure(report, why: str):
    found = [f for f in report.failures if why in f.why]
    assert found, report.message()
    return found[0]


def _gate_blocks_whole_partition(lake, table, frame, why, day=DAY):
    """No session before in the lake: the partition is still blocked, quarantined whole, unpublished."""
    assert not lake.exists("raw", table, cal.previous_session([pd.Timestamp(day)], inclusive=False)[0])
    lake.write_partition("raw", table, day, frame)
    gate = run_gate(lake, table, [day])
    msg = gate.message()
    assert not gate.passed and f"raw/{table}" in msg and day in msg, msg
    failure = _failure(gate.report, why)
    assert failure.partitions == [day] and failure.row_index is None  # the partition, not some rows
    assert len(lake.read_partition("quarantine", table, day)) == len(frame)
    with pytest.raises(NotValidatedError, match=day):
        publish_validated(lake, table, [day])
    return failure


class TestContractCalendar:
    """B. Completeness, VX contract calendar: the first 7 listed months must be delivered (real CFE
    data since 2008-04-21, generated data always); M8 alone may be missing, as CFE shows in 2009-2011."""

    def test_curve_missing_a_middle_month_without_the_session_before(self, lake):
        f = synthetic.generate("vix_futures", [DAY])
        missing = f.loc[f["month_index"] == 3, "contract"].iloc[0]
        f = f[f["month_index"] != 3].assign(month_index=np.arange(1, 8))
        failure = _gate_blocks_whole_partition(lake, "vix_futures", f, "contract calendar")
        assert missing in failure.why and failure.column == "contract"

    def test_curve_cut_to_four_months(self):
        f = synthetic.generate("vix_futures", [DAY])
        rep = _validate("vix_futures", f[f["month_index"] <= 4], DAY)
        assert _failure(rep, "contract calendar").rows == 3  # M5, M6, M7

    def test_m8_not_yet_listed_passes_and_real_2004_to_2008_listings_pass(self):
        f = synthetic.generate("vix_futures", [DAY])
        assert _validate("vix_futures", f[f["month_index"] <= 7], DAY).passed
        # replay: model (8 months) -> real CFE (4, quarterly cycle) on 2004-03-26, and CFE's switch to
        # consecutive months in April 2008
        for start, end in (("2004-03-01", "2004-04-30"), ("2008-04-01", "2008-05-15")):
            days = cal.sessions_between(start, end)
            rep = _validate("vix_futures", replay.generate("vix_futures", days), [d.strftime("%Y-%m-%d") for d in days])
            assert rep.passed, rep.message()


class TestUniverse:
    """B. Completeness, universe membership of equity_bars / fundamentals: the previous delivery's
    symbols, the same day's other table, the ETFs, and a floor when nothing else is known."""

    def test_a_tenth_of_the_universe_without_the_session_before(self, lake):
        f = synthetic.generate("equity_bars", [DAY])
        tenth = f[f.index % 10 == 0]
        _gate_blocks_whole_partition(lake, "equity_bars", tenth, "fewer than the 20 of any complete equity_bars")

    def test_a_tenth_of_the_universe_against_the_same_days_fundamentals(self):
        f = synthetic.generate("equity_bars", [DAY])
        fund = synthetic.generate("fundamentals", [DAY])
        part = f[(f.index % 10 == 0) | (f["sector"] == "ETF")]
        peers = {"fundamentals": fund[PEER_TABLES["equity_bars"]["fundamentals"]]}
        rep = _validate("equity_bars", part, DAY, peers=peers)
        assert _failure(rep, "symbols of raw/fundamentals of the same day missing").rows == 90

    def test_symbols_replaced_at_the_same_count(self, lake):
        lake.write_partition("raw", "equity_bars", PREV, synthetic.generate("equity_bars", [PREV]))
        f = synthetic.generate("equity_bars", [DAY])
        f.loc[:29, "symbol"] = [f"Z{i:03d}" for i in range(30)]  # 30 names not delivered, 30 unknown ones
        lake.write_partition("raw", "equity_bars", DAY, f)
        gate = run_gate(lake, "equity_bars", [DAY])
        failure = _failure(gate.report, f"symbols of the previous delivery ({PREV}) missing")
        assert failure.rows == 30 and "S000" in failure.why

    def test_a_few_delistings_pass(self):
        days = [PREV, DAY]
        f = synthetic.generate("equity_bars", days)
        drop = (f["date"] == pd.Timestamp(DAY)) & f["symbol"].isin(["S001", "S002", "S003"])
        assert _validate("equity_bars", f[~drop], days).passed

    def test_etfs_missing(self):
        f = synthetic.generate("equity_bars", [DAY])
        rep = _validate("equity_bars", f[f["symbol"] != "QQQ"], DAY)
        assert "QQQ" in _failure(rep, "every delivery holds SPY, QQQ, IWM").why

    def test_fundamentals_missing_a_fifth_of_the_names_of_equity_bars(self):
        fund = synthetic.generate("fundamentals", [DAY])
        bars = synthetic.generate("equity_bars", [DAY])[PEER_TABLES["fundamentals"]["equity_bars"]]
        rep = _validate("fundamentals", fund.iloc[20:], DAY, peers={"equity_bars": bars})
        assert _failure(rep, "raw/equity_bars of the same day missing").rows == 20


class TestTypicalSize:
    """B. Completeness, typical size: chains (both option chains) against the median of the sessions
    before, with a documented floor when none is known; required keys of the small tables."""

    def test_spx_chain_with_1_percent_of_its_rows_without_the_session_before(self, lake):
        f = synthetic.generate("spx_options", [DAY])
        _gate_blocks_whole_partition(lake, "spx_options", f.iloc[::100], "fewer than the 300")

    def test_vix_chain_with_a_tenth_of_its_rows_without_the_session_before(self, lake):
        f = synthetic.generate("vix_options", [DAY])
        _gate_blocks_whole_partition(lake, "vix_options", f.iloc[::10], "fewer than the 50")

    @pytest.mark.parametrize(("table", "keep"), [("spx_options", 5), ("vix_options", 4)])
    def test_chain_far_below_its_typical_size(self, table, keep):
        """A fifth / a quarter of the chain: above the floor, below a third of the typical day."""
        hist = synthetic.generate(table, history_sessions(DAY, 5))[history_columns(table)]  # keys: what the gate reads
        f = synthetic.generate(table, [DAY]).iloc[::keep]
        rep = _validate(table, f, DAY, hist)
        assert "median of the 5 sessions before" in _failure(rep, "incomplete partition").why
        assert _validate(table, f, DAY).passed  # nothing to compare with: the floor alone lets it through

    def test_chain_with_a_single_expiry(self):
        f = synthetic.generate("spx_options", [DAY])
        one = f[f["expiry"] == f["expiry"].max()]
        assert len(one) >= 300
        assert _failure(_validate("spx_options", one, DAY), "incomplete chain: 1 expiries").rows == 1

    def test_truncated_two_days_running_is_still_incomplete(self):
        """The session before only: a truncated day after a truncated day looked complete."""
        days = history_sessions(DAY, 10)
        hist = synthetic.generate("equity_bars", days)
        hist = hist[(hist["date"] != pd.Timestamp(days[-1])) | (hist.index % 4 == 0)]  # yesterday: a quarter
        today = synthetic.generate("equity_bars", [DAY])
        today = today[(today.index % 4 == 0) | (today["sector"] == "ETF")]
        assert "typical 103" in _failure(_validate("equity_bars", today, DAY, hist), "incomplete partition").why

    @pytest.mark.parametrize(("table", "column", "value"), [("index_levels", "index", "VIX"),
                                                            ("macro_events", "event_type", "CPI")])
    def test_required_keys(self, lake, table, column, value):
        f = synthetic.generate(table, [DAY])
        failure = _gate_blocks_whole_partition(lake, table, f[f[column] != value], "every delivery holds")
        assert value in failure.why and failure.column == column


def test_a_blocked_partition_keeps_the_last_good_validated_version(lake):
    """B. Completeness: the gate quarantines a partial re-delivery and validated/ keeps what passed."""
    good = synthetic.generate("vix_futures", [DAY])
    lake.write_partition("raw", "vix_futures", DAY, good)
    assert run_gate(lake, "vix_futures", [DAY]).passed
    assert publish_validated(lake, "vix_futures", [DAY]) == {DAY: 8}
    lake.write_partition("raw", "vix_futures", DAY, good[good["month_index"] <= 3])  # partial re-delivery
    assert not run_gate(lake, "vix_futures", [DAY]).passed
    with pytest.raises(NotValidatedError, match=DAY):
        publish_validated(lake, "vix_futures", [DAY])
    assert len(lake.read_partition("validated", "vix_futures", DAY)) == 8
    assert len(lake.read_partition("quarantine", "vix_futures", DAY)) == 3


@pytest.mark.parametrize("source", ["synthetic", "replay"])
def test_complete_deliveries_pass_every_table_with_history_and_peers(source):
    """B (and A): a month of every table, validated as a batch after 20 sessions of history, with the
    peer tables of the same days, passes (replay: the 2008 crash, real SPX / COMP / CFE)."""
    gen = synthetic.generate if source == "synthetic" else replay.generate
    end = DAY if source == "synthetic" else "2008-10-31"
    sessions = history_sessions(end, 25) + [end]
    hist_days, days = sessions[:20], sessions[20:]
    frames = {t: gen(t, days) for t in RAW_TABLES}
    for table in RAW_TABLES:
        peers = {p: frames[p][cols] for p, cols in PEER_TABLES.get(table, {}).items()}
        rep = _validate(table, frames[table], days, gen(table, hist_days), peers)
        assert rep.passed, rep.message()
