"""raw/<table> and validated/<table> for the nine raw tables, with the blocking GE check
between them. One factory, fed by the table contracts: no per-table copies."""

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from alvh_pipeline.assets._shell import LayerTable, check_result, layer_table
from alvh_pipeline.lake import Lake, LakeReadError, object_columns, range_arrow, same_as_own_conversion, to_arrow
from alvh_pipeline.partitions import DAY_LOCAL, trading_days
from alvh_pipeline.resources import LakeResource, StrategyConfig
from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES
from alvh_pipeline.sources.resource import MarketSource

FETCH_DAYS = 42  # days fetched and converted together: amortizes per-call costs, bounds memory


class EmptyDeliveryError(RuntimeError):
    pass


def had_rows(lake: Lake, raw: LayerTable, key: str) -> bool:
    if not lake.exists(raw.layer, raw.name, key):
        return False
    try:
        return len(lake.read_partition(raw.layer, raw.name, key, columns=["date"])) > 0
    except (LakeReadError, KeyError):
        return True  # unreadable or odd: keep it for the gate to quarantine, don't overwrite blind


def day_tables(frames: list[pd.DataFrame]) -> list[pa.Table]:
    """`lake.to_arrow` of each day's frame as delivered, from one conversion of the days cut at
    their boundaries where that gives the same table (`lake.range_arrow`, as `Lake.write_range`)."""
    first = frames[0] if frames else None
    if first is None or any(list(f.columns) != list(first.columns) or not f.dtypes.equals(first.dtypes)
                            for f in frames[1:]):
        return [to_arrow(f) for f in frames]
    whole = range_arrow(pd.concat(frames, ignore_index=True), None)
    if whole is None:
        return [to_arrow(f) for f in frames]
    whole = whole.combine_chunks()
    ends = np.cumsum([len(f) for f in frames])
    pieces = [whole.slice(end - len(f), len(f)) for f, end in zip(frames, ends)]
    objects = object_columns(first)  # the same columns and dtypes in every frame (above)
    return [piece if same_as_own_conversion(piece, objects, None) else to_arrow(f) for piece, f in zip(pieces, frames)]


def build_table_assets(table: str) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    contract = CONTRACTS[table]
    raw, validated = layer_table("raw", table), layer_table("validated", table)

    @dg.asset(key=raw.key, partitions_def=trading_days, backfill_policy=DAY_LOCAL, group_name=raw.layer,
              kinds={"parquet"}, description=f"{contract.description} As delivered by the source.",
              metadata={"contract": dg.TableSchema(columns=[dg.TableColumn(n, str(t), description=d)
                                                              for n, t, d in contract.columns])})
    def raw_asset(context: dg.AssetExecutionContext, source: MarketSource, lake: LakeResource) -> dg.MaterializeResult:
        rows, refused, synthetic_rows = {}, [], 0
        with lake.lake.batch():  # the range's files published together, one sync
            keys = list(context.partition_keys)
            for at in range(0, len(keys), FETCH_DAYS):
                chunk = keys[at:at + FETCH_DAYS]
                frames = source.fetch_days(table, chunk)  # per partition: rows land in the file of the day
                for key, frame, day in zip(chunk, frames, day_tables(frames)):  # they were asked for
                    if frame.empty and had_rows(lake.lake, raw, key):
                        refused.append(key)  # an empty delivery never replaces rows already delivered
                        continue
                    lake.lake.write_arrow(raw.layer, table, key, day)
                    rows[key] = len(frame)
                    if "provenance" in frame:
                        synthetic_rows += int((frame["provenance"] == "synthetic").sum())
        if refused:
            raise EmptyDeliveryError(
                f"raw/{table}: the {source.kind} source delivered 0 rows for {len(refused)} partition(s) that already "
                f"hold rows, which were kept: {', '.join(refused[:10])}")
        meta = {"rows": sum(rows.values()), "partitions": len(rows), "source": source.kind,
                "path": str(raw.path(lake.lake))}
        if table == "equity_bars" and source.kind != "files":
            # the planted pairs are the synthetic universe's ground truth; real names (replay
            # from 2004-01-02) have none, so a delivery without synthetic rows claims none
            meta["planted_pairs"] = (dg.MetadataValue.json(source.ground_truth()["planted_pairs"]) if synthetic_rows
                                     else dg.MetadataValue.text("not applicable: no synthetic rows (real equities)"))
        return dg.MaterializeResult(metadata=meta)

    # the cross-table rules read the peers' raw rows of the same days (PEER_TABLES); declaring them
    # as check deps would make a cycle (index_levels <-> spx_options), so a check whose peer is not
    # in raw/ yet skips that rule. A run materializes every raw table before any check (they are
    # all level 0 of the plan), so within `ingest` the peers are there.
    @dg.asset_check(asset=raw.key, name="ge_suite", blocking=True, partitions_def=trading_days,
                    description=f"Great Expectations suite raw_{table}: schema, dtypes, keys, bounds, row rules.")
    def ge_check(context: dg.AssetCheckExecutionContext, lake: LakeResource,
                 strategy: StrategyConfig) -> dg.AssetCheckResult:
        from alvh_pipeline.quality.gate import run_gate

        keys = list(context.partition_keys)
        gate = run_gate(lake.lake, table, keys, stale_threshold=strategy.stale_threshold)
        if not gate.passed:
            context.log.error(gate.message())
        return check_result(gate.check_report(), table=table, partitions=len(keys),
                            quarantine=str(layer_table("quarantine", table).path(lake.lake)))

    @dg.asset(key=validated.key, deps=[raw.key], partitions_def=trading_days, backfill_policy=DAY_LOCAL,
              group_name=validated.layer, kinds={"parquet"},
              description=f"{contract.description} Typed to the contract; only partitions whose raw file passed "
                          f"the GE suite.",
              automation_condition=dg.AutomationCondition.eager()
              & dg.AutomationCondition.all_deps_blocking_checks_passed())
    def validated_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        from alvh_pipeline.quality.gate import publish_validated

        rows = publish_validated(lake.lake, table, list(context.partition_keys))
        return dg.MaterializeResult(metadata={"rows": sum(rows.values()), "partitions": len(rows),
                                              "path": str(validated.path(lake.lake))})

    return [raw_asset, validated_asset], [ge_check]


_BUILT = [build_table_assets(t) for t in RAW_TABLES]
assets = [a for built, _ in _BUILT for a in built]
checks = [c for _, built in _BUILT for c in built]
