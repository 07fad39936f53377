"""Resources shared by every asset: where the lake is."""


import dagster as dg

from alvh_pipeline.lake import Lake, lake_root_from_env


class LakeResource(dg.ConfigurableResource):
    root: str = "data_lake"

    @property
    def lake(self) -> Lake:
        return Lake(self.root)


def lake_from_env() -> LakeResource:
    return LakeResource(root=lake_root_from_env())
