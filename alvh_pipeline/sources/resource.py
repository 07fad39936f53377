"""`MarketSource`: the one resource every raw asset reads from; `kind` picks the source
(synthetic | replay | files; run config, or env `ALVH_SOURCE` through `resources.build_resources`)."""

from collections.abc import Sequence

import dagster as dg
import pandas as pd

SOURCE_KINDS = ("synthetic", "replay", "files")


class MarketSource(dg.ConfigurableResource):
    kind: str = "synthetic"
    seed: int = 7
    n_equities: int = 100
    files_root: str = ""

    def fetch(self, table: str, dates: Sequence) -> pd.DataFrame:
        from alvh_pipeline.core.market_sim import SimConfig

        cfg = SimConfig(seed=self.seed, n_equities=self.n_equities)
        if self.kind == "synthetic":
            from alvh_pipeline.sources import synthetic

            return synthetic.generate(table, dates, cfg)
        if self.kind == "replay":
            from alvh_pipeline.sources import replay

            return replay.generate(table, dates, cfg)
        if self.kind == "files":
            from alvh_pipeline.sources import files

            if not self.files_root:
                raise ValueError("files source needs files_root (env ALVH_FILES_ROOT)")
            return files.generate(table, dates, self.files_root)
        raise ValueError(f"unknown source kind {self.kind!r}; expected one of {SOURCE_KINDS}")

    def fetch_days(self, table: str, dates: Sequence) -> list[pd.DataFrame]:
        """One frame per day, each what `fetch(table, [day])` returns (rows stay with the day they
        were asked for); the synthetic source builds them without a market look-up per day."""
        if self.kind == "synthetic":
            from alvh_pipeline.core.market_sim import SimConfig
            from alvh_pipeline.sources import synthetic

            return synthetic.generate_days(table, dates, SimConfig(seed=self.seed, n_equities=self.n_equities))
        return [self.fetch(table, [d]) for d in dates]

    def ground_truth(self) -> dict:
        from alvh_pipeline.core.market_sim import SimConfig
        from alvh_pipeline.sources import synthetic

        return synthetic.ground_truth(SimConfig(seed=self.seed, n_equities=self.n_equities))
