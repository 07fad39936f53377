"""One Great Expectations 1.x suite per raw table, generated from the table contract
(`schemas.CONTRACTS`) plus the table's bounds and row rules (`quality.rules`).

GE is imported lazily (it costs ~1-3 s) and suites are built once per process.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from alvh_pipeline.core import provenance
from alvh_pipeline.quality.rules import VIX_FUTURES_MAX_POINTS, rules_for
from alvh_pipeline.schemas import CONTRACTS, type_family

# Accepted pandas dtype names per contract type (GE 1.x on pandas 3: strings are "str").
# GE's ExpectColumnValuesToBeOfType matches datetime64 of any unit and object columns as "str".
_TYPE_NAMES = {"float": "float64", "int": "int64", "str": "str", "date": "datetime64"}


# (column, min, max, strict_min) — value bounds per table; prices strictly positive. The caps are
# generous absurdity limits (issue 7: a price of 1e300 passed), far beyond any real value; per-instrument
# levels, jumps and option caps are row rules (quality.rules).
EQUITY_PRICE_CAP = 1e7  # BRK.A, the dearest US share, trades near 7e5
EQUITY_VOLUME_CAP = 1e11  # shares a day; the busiest names trade a few 1e9
QUOTE_SIZE_CAP = 1e9  # shares at the top of the book
CONTRACTS_CAP = 1e7  # VX volume / open interest (records ~7e5) and option sizes
BREADTH_COUNT_CAP = 20_000  # NYSE lists ~3,500 issues
BREADTH_VOLUME_CAP = 1e12
SHARES_CAP = 1e12  # the largest share counts are ~3e10
PER_SHARE_CAP = 1e6  # eps / cfps / dps per share (BRK.A earns ~6e4 a share)
SPX_CAP = 50_000.0

_EQ_PRICE = [(c, 0, EQUITY_PRICE_CAP, True) for c in ("open", "high", "low", "close", "bid", "ask")]
BOUNDS: dict[str, list[tuple[str, float | None, float | None, bool]]] = {
    "equity_bars": [*_EQ_PRICE, ("volume", 0, EQUITY_VOLUME_CAP, False), ("bid_size", 0, QUOTE_SIZE_CAP, False),
                    ("ask_size", 0, QUOTE_SIZE_CAP, False)],
    "index_levels": [("open", 0, None, True), ("high", 0, None, True), ("low", 0, None, True),
                     ("close", 0, None, True)],
    "vix_futures": [("settle", 0, VIX_FUTURES_MAX_POINTS, True), ("bid", 0, VIX_FUTURES_MAX_POINTS, True),
                    ("ask", 0, VIX_FUTURES_MAX_POINTS, True), ("month_index", 1, 12, False),
                    ("volume", 0, CONTRACTS_CAP, False), ("open_interest", 0, CONTRACTS_CAP, False),
                    ("bid_size", 0, CONTRACTS_CAP, False), ("ask_size", 0, CONTRACTS_CAP, False)],
    "spx_options": [("strike", 0, None, True), ("bid", 0, None, False), ("ask", 0, None, True),
                    ("underlying", 0, SPX_CAP, True), ("rate", -0.05, 0.25, False),
                    ("dividend_yield", 0, 0.2, False), ("model_iv", 0, 5, True),
                    ("bid_size", 0, CONTRACTS_CAP, False), ("ask_size", 0, CONTRACTS_CAP, False)],
    "vix_options": [("strike", 0, 1000, True), ("bid", 0, None, False), ("ask", 0, None, True),
                    ("future_price", 0, VIX_FUTURES_MAX_POINTS, True), ("rate", -0.05, 0.25, False),
                    ("model_iv", 0, 10, True), ("bid_size", 0, CONTRACTS_CAP, False),
                    ("ask_size", 0, CONTRACTS_CAP, False)],
    "breadth": [("advancers", 0, BREADTH_COUNT_CAP, False), ("decliners", 0, BREADTH_COUNT_CAP, False),
                ("unchanged", 0, BREADTH_COUNT_CAP, False), ("total_issues", 1, BREADTH_COUNT_CAP, False),
                ("up_volume", 0, BREADTH_VOLUME_CAP, False), ("down_volume", 0, BREADTH_VOLUME_CAP, False),
                ("new_highs", 0, None, False), ("new_lows", 0, None, False)],
    "macro_events": [("surprise", -10, 10, False)],
    "fundamentals": [("shares_outstanding", 1, SHARES_CAP, False), ("dps_ttm", 0, PER_SHARE_CAP, False),
                     ("eps_ttm", -PER_SHARE_CAP, PER_SHARE_CAP, False),
                     ("cfps_ttm", -PER_SHARE_CAP, PER_SHARE_CAP, False)],
    "rates": [("tbill_3m", -0.02, 0.25, False), ("reer_index", 0, 1000, True), ("rate_differential", -0.3, 0.3, False)],
}
CATEGORIES = {
    "index_levels": {"index": ["SPX", "COMP", "VIX"]},
    "macro_events": {"event_type": ["FOMC", "CPI", "PPI"]},
    "breadth": {"exchange": ["NYSE"]},
    "equity_bars": {}, "vix_futures": {}, "spx_options": {"option_type": ["C", "P"]},
    "vix_options": {"option_type": ["C", "P"]}, "fundamentals": {}, "rates": {},
}
PROVENANCES = list(provenance.VALUES)  # synthetic | real | real:<source> | derived | model


def _gx():
    from alvh_pipeline.resources import quiet_great_expectations

    quiet_great_expectations()  # before GE's first import: no analytics, no network
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def build_expectations(table: str, stale_threshold: float) -> list:
    """The suite's expectations; each carries `meta.why` for the failure message."""
    _, gxe = _gx()
    c = CONTRACTS[table]
    rules = rules_for(table, stale_threshold)
    ex = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"why": "partition is empty"}),
        # names every missing / unexpected column in its details (no per-column existence checks)
        gxe.ExpectTableColumnsToMatchSet(column_set=c.column_names + [r.name for r in rules], exact_match=True,
                                         meta={"why": "columns differ from the contract"}),
    ]
    for name, typ, _ in c.columns:
        ex.append(gxe.ExpectColumnValuesToBeOfType(column=name, type_=_TYPE_NAMES[type_family(typ)],
                                                       meta={"why": f"dtype must be {type_family(typ)}"}))
        if name not in c.nullable:
            ex.append(gxe.ExpectColumnValuesToNotBeNull(column=name, meta={"why": "null / NaN value"}))
    if len(c.keys) == 1:
        ex.append(gxe.ExpectColumnValuesToBeUnique(column=c.keys[0], meta={"why": "duplicated key"}))
    else:
        ex.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(c.keys), meta={"why": "duplicated key"}))
    for col, lo, hi, strict in BOUNDS[table]:
        why = "value out of bounds"
        if table == "vix_futures" and hi == VIX_FUTURES_MAX_POINTS:
            why = f"above {VIX_FUTURES_MAX_POINTS:g} VIX points: quoted at the old 10x multiplier?"
        elif lo == 0 and strict:
            why = "price must be > 0" + (f" and <= {hi:g}" if hi is not None else "")
        elif hi is not None:
            why = f"value out of bounds [{lo:g}, {hi:g}]"
        ex.append(gxe.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi, strict_min=strict,
                                                    meta={"why": why}))
    for col, values in CATEGORIES[table].items():
        ex.append(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=values, meta={"why": "unknown category"}))
    ex.append(gxe.ExpectColumnValuesToBeInSet(column="provenance", value_set=PROVENANCES,
                                              meta={"why": "unknown provenance"}))
    for col, pattern in c.identifiers:
        if col not in CATEGORIES[table]:  # a category's set is the stricter check
            ex.append(gxe.ExpectColumnValuesToMatchRegex(
                column=col, regex=f"^(?:{pattern})$",
                meta={"why": f"identifier must match {pattern} (a code, not free text)"}))
    for r in rules:
        ex.append(gxe.ExpectColumnValuesToBeInSet(column=r.name, value_set=[True], mostly=r.mostly,
                                                  meta={"why": r.description, "about": ",".join(r.columns)}))
    return ex


class SuiteRunner:
    """One ephemeral GE context per process; one suite per table, built on first use."""

    def __init__(self, stale_threshold: float) -> None:
        gx, _ = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.stale_threshold = stale_threshold
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = self.context.data_sources.add_pandas("alvh").add_dataframe_asset("frame")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        self._suites: dict[str, object] = {}

    def suite(self, table: str) -> object:
        if table not in self._suites:
            gx, _ = _gx()
            expectations = build_expectations(table, self.stale_threshold)
            suite = gx.ExpectationSuite(name=f"raw_{table}", expectations=expectations)
            self._suites[table] = self.context.suites.add(suite)
        return self._suites[table]

    def validate(self, table: str, frame: pd.DataFrame) -> object:
        """BOOLEAN_ONLY first (the common, passing case is ~2x cheaper); on any failure the suite
        runs again with COMPLETE results, which carry the offending rows' indices."""
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        quick = batch.validate(self.suite(table), result_format={"result_format": "BOOLEAN_ONLY"})
        if quick.success:
            return quick
        return batch.validate(self.suite(table), result_format={"result_format": "COMPLETE"})


@lru_cache(maxsize=4)
def suite_runner(stale_threshold: float = 0.2) -> SuiteRunner:
    return SuiteRunner(stale_threshold)
