"""`MarketSource`: the one resource every raw asset reads from; `kind` picks the source
(synthetic | replay | files; run config, or env `ALVH_SOURCE` through `resources.build_resources`).

Mixed sources (issue 19): with `kind = files`, each table comes from the drop folder where the
folder holds it (`files_tables`, env `ALVH_FILES_TABLES`, narrows that to the tables listed), and
from `fallback` (env `ALVH_FALLBACK`: replay | synthetic) otherwise: a whole table the folder does
not hold, and the days a held table has no rows for (e.g. real SPX chains for 2008 only, model
chains for the look-back years). Each row's `provenance` says which. Without a fallback, a table
the folder does not hold is an error, as before. What a vendor file does not carry is completed
here (`sources/complete.py`): option rates and dividends from the rates table and parity.
"""

from collections.abc import Sequence

import dagster as dg
import pandas as pd

SOURCE_KINDS = ("synthetic", "replay", "files")
FALLBACK_KINDS = ("", "synthetic", "replay")


class MarketSource(dg.ConfigurableResource):
    kind: str = "synthetic"
    seed: int = 7
    n_equities: int = 100
    files_root: str = ""
    fallback: str = ""  # files source only: where a table (or a day) the drop folder lacks comes from
    files_tables: str = ""  # files source only: comma list of the tables read from the folder ("" = all it holds)
    vendor: str = ""  # files source only: a vendor layout's name, forced where headers are ambiguous

    def _config(self):
        from alvh_pipeline.core.market_sim import SimConfig

        return SimConfig(seed=self.seed, n_equities=self.n_equities)

    def _generated(self, kind: str, table: str, dates: Sequence) -> pd.DataFrame:
        if kind == "synthetic":
            from alvh_pipeline.sources import synthetic

            return synthetic.generate(table, dates, self._config())
        from alvh_pipeline.sources import replay

        return replay.generate(table, dates, self._config())

    def from_folder(self, table: str) -> bool:
        """Whether `table` is read from the drop folder (files source: it holds the table, and
        `files_tables` is empty or lists it)."""
        from alvh_pipeline.sources import files

        listed = [t.strip() for t in self.files_tables.split(",") if t.strip()]
        if listed and table not in listed:
            return False
        return bool(files.table_files(self.files_root, table))

    def fetch(self, table: str, dates: Sequence) -> pd.DataFrame:
        if self.kind in ("synthetic", "replay"):
            return self._generated(self.kind, table, dates)
        if self.kind != "files":
            raise ValueError(f"unknown source kind {self.kind!r}; expected one of {SOURCE_KINDS}")
        if self.fallback not in FALLBACK_KINDS:
            raise ValueError(f"unknown fallback source {self.fallback!r} (ALVH_FALLBACK); expected one of "
                             f"{[k for k in FALLBACK_KINDS if k]} or none")
        if not self.files_root:
            raise ValueError("files source needs files_root (env ALVH_FILES_ROOT)")
        from alvh_pipeline.sources import complete, files

        if not self.from_folder(table):
            if self.fallback:
                return self._generated(self.fallback, table, dates)
            if self.files_tables.strip():  # else: the folder lacks the table, and `files` says so below
                raise ValueError(f"files source: table '{table}' is not in files_tables ({self.files_tables!r}, "
                                 f"ALVH_FILES_TABLES) and no fallback source is set (ALVH_FALLBACK)")
        frame = files.generate(table, dates, self.files_root, self.vendor)
        if self.fallback:
            wanted = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize()
            missing = wanted[~wanted.isin(frame["date"].dt.normalize())]
            if len(missing):
                frame = pd.concat([frame, self._generated(self.fallback, table, missing)], ignore_index=True)
                frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
        return complete.complete(table, frame, self.fetch, self.seed)

    def fetch_days(self, table: str, dates: Sequence) -> list[pd.DataFrame]:
        """One frame per day, each what `fetch(table, [day])` returns (rows stay with the day they
        were asked for); the model sources build them without a market look-up per day."""
        if self.kind == "synthetic":
            from alvh_pipeline.sources import synthetic

            return synthetic.generate_days(table, dates, self._config())
        if self.kind == "files":  # one read (and one completion) for the days, split by day
            frame = self.fetch(table, dates)
            day = frame["date"].dt.normalize()
            return [frame[day == pd.Timestamp(d)].reset_index(drop=True) for d in dates]
        from alvh_pipeline.sources import replay

        return replay.generate_days(table, dates, self._config())

    def ground_truth(self) -> dict:
        from alvh_pipeline.sources import synthetic

        return synthetic.ground_truth(self._config())
