"""Row provenance labels: the one list of values a raw row's `provenance` may take, and how the
verdict spells them.

A row is `synthetic` (the planted-ground-truth universe), `model` (generated, conditioned on real
paths), `derived` (computed from real data by a stated rule) or `real`. Real rows may name where
they come from as `real:<source>` (e.g. `real:cboe_datashop` for a chain read from a Cboe DataShop
file), so the verdict can say "options=real (Cboe DataShop)" from the lake alone, however the lake
was filled. Every `real:<source>` counts as real wherever the code asks "is this row real?"
(`is_real`).
"""

from __future__ import annotations

import pandas as pd

# source tag -> how a reader names it
REAL_SOURCES: dict[str, str] = {
    "cboe_datashop": "Cboe DataShop",
    "orats": "ORATS",
    "historical_option_data": "HistoricalOptionData",
    "cboe": "Cboe index history",
    "cfe": "CFE",
    "equity_file": "equity file",
    "survivors_2017": "survivors as of 2017",
}
CLASSES = ("synthetic", "real", "derived", "model")
VALUES: tuple[str, ...] = CLASSES + tuple(f"real:{s}" for s in REAL_SOURCES)


def real(source: str) -> str:
    """The label of a real row from `source` (a key of REAL_SOURCES)."""
    if source not in REAL_SOURCES:
        raise KeyError(f"unknown real-data source {source!r}; known: {sorted(REAL_SOURCES)}")
    return f"real:{source}"


def is_real(provenance: pd.Series) -> pd.Series:
    """True where a row is real, whatever its source."""
    text = provenance.astype(str)
    return (text == "real") | text.str.startswith("real:")


def spell(labels: pd.Series) -> pd.Series:
    """Provenance strings as a reader reads them: every `real:<source>` becomes "real (<name>)"
    (e.g. "options=real:cboe_datashop" -> "options=real (Cboe DataShop)")."""
    return labels.astype(str).str.replace(
        r"real:([a-z0-9_]+)", lambda m: f"real ({REAL_SOURCES.get(m.group(1), m.group(1))})", regex=True)



def known(label: str) -> bool:
    return label in VALUES
