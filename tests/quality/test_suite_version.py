"""Suite versioning cannot go stale: the version a verdict records covers the built expectation
suites, so a change in the table contracts (or a bound, or the stale threshold) invalidates every
old verdict and publishing refuses until the gate runs again."""

import dataclasses

import pytest

from alvh_pipeline.quality import gate
from alvh_pipeline.schemas import CONTRACTS
from alvh_pipeline.sources import synthetic

DAY = "2024-03-04"


@pytest.fixture
def fresh_version():
    gate.suite_version.cache_clear()
    yield
    gate.suite_version.cache_clear()



def test_version_changes_with_the_contracts(monkeypatch, fresh_version):
    before = gate.suite_version(0.2)
    gate.suite_version.cache_clear()
    monkeypatch.setitem(CONTRACTS, "rates", dataclasses.replace(CONTRACTS["rates"],
                                                                nullable=frozenset({"reer_index"})))
    assert gate.suite_version(0.2) != before


def test_version_changes_with_the_stale_threshold(fresh_version):
    assert gate.suite_version(0.2) != gate.suite_version(0.3)
    assert gate.suite_version(0.2) == gate.suite_version(0.2)


def test_a_verdict_from_an_older_suite_does_not_publish(lake, monkeypatch, fresh_version):
    lake.write_partition("raw", "rates", DAY, synthetic.generate("rates", [DAY]))
    assert gate.run_gate(lake, "rates", [DAY]).passed
    assert gate.publish_validated(lake, "rates", [DAY]) == {DAY: 1}
    gate.suite_version.cache_clear()
    monkeypatch.setitem(CONTRACTS, "rates", dataclasses.replace(CONTRACTS["rates"],
                                                                nullable=frozenset({"reer_index"})))
    with pytest.raises(gate.NotValidatedError, match="suite changed since"):
        gate.publish_validated(lake, "rates", [DAY])
