from alvh_pipeline.quality.suites import build_expectations
from alvh_pipeline.quality.validate import validate_frame
from alvh_pipeline.schemas import CONTRACTS
from alvh_pipeline.sources import synthetic


def test_validation_prints_nothing(capfd):
    frame = synthetic.generate("spx_options", ["2024-03-05"])
    capfd.readouterr()
    assert validate_frame("spx_options", frame, ["2024-03-05"]).passed
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no GE progress bars, no analytics chatter


def test_every_contract_column_has_type_and_null_expectations_and_the_set_is_exact():
    for table, contract in CONTRACTS.items():
        ex = build_expectations(table, 0.2)
        by_type = {}
        for e in ex:
            by_type.setdefault(type(e).__name__, set()).add(getattr(e, "column", None))
        assert by_type["ExpectColumnValuesToBeOfType"] == set(contract.column_names)
        assert by_type["ExpectColumnValuesToNotBeNull"] == set(contract.column_names) - contract.nullable
        (column_set,) = [e for e in ex if type(e).__name__ == "ExpectTableColumnsToMatchSet"]
        assert set(contract.column_names) <= set(column_set.column_set) and column_set.exact_match


def test_renamed_column_is_named_missing_and_unexpected():
    frame = synthetic.generate("rates", ["2024-03-05"]).rename(columns={"tbill_3m": "tbill"})
    report = validate_frame("rates", frame, ["2024-03-05"])
    lines = report.message()
    assert "'tbill_3m': missing column" in lines and "'tbill': column not in the contract" in lines


def test_every_table_has_a_completeness_spec_and_capped_prices():
    """Issue 7: completeness is defined for every raw table, and no price, size or count column of
    the suites is left without an upper bound (a value of 1e300 used to pass)."""
    from alvh_pipeline.quality.suites import BOUNDS
    from alvh_pipeline.quality.validate import COMPLETENESS, PEER_TABLES

    assert set(COMPLETENESS) == set(CONTRACTS)
    assert set(PEER_TABLES) <= set(CONTRACTS) and all(set(p) <= set(CONTRACTS) for p in PEER_TABLES.values())
    uncapped = {(t, c) for t, bounds in BOUNDS.items() for c, _, hi, _ in bounds if hi is None}
    # bid / ask / strike of the chains are capped by row rules relative to the underlying / strike;
    # index OHLC by the per-index range rule; new highs / lows by total_issues
    assert uncapped == {("index_levels", c) for c in ("open", "high", "low", "close")} | {
        ("spx_options", c) for c in ("strike", "bid", "ask")} | {("vix_options", c) for c in ("bid", "ask")} | {
        ("breadth", "new_highs"), ("breadth", "new_lows")}
    names = {t: {type(e).__name__ + ":" + str(getattr(e, "column", "")) for e in build_expectations(t, 0.2)}
             for t in ("index_levels", "vix_futures", "spx_options", "vix_options", "equity_bars")}
    assert "ExpectColumnValuesToBeInSet:_level_in_range" in names["index_levels"]
    assert "ExpectColumnValuesToBeInSet:_spx_matches_option_parity" in names["index_levels"]
    assert "ExpectColumnValuesToBeInSet:_curve_on_calendar" in names["vix_futures"]
    assert "ExpectColumnValuesToBeInSet:_matches_spx_close" in names["spx_options"]
    assert "ExpectColumnValuesToBeInSet:_future_matches_vx" in names["vix_options"]
    assert "ExpectColumnValuesToBeInSet:_no_implausible_jump" in names["equity_bars"]
