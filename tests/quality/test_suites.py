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
