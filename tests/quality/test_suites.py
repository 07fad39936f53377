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


def test_every_contract_column_has_existence_type_and_null_expectations():
    for table, contract in CONTRACTS.items():
        ex = build_expectations(table, 0.2)
        cols = {(e.expectation_type if hasattr(e, "expectation_type") else type(e).__name__, getattr(e, "column", None))
                for e in ex}
        for name in contract.column_names:
            assert ("ExpectColumnToExist", name) in cols or ("expect_column_to_exist", name) in cols
            assert any(c == name and "OfType" in t or c == name and "of_type" in t for t, c in cols)
