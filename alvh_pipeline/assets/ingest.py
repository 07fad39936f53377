"""raw/<table> and validated/<table> for the nine raw tables, with the blocking GE check
between them. One factory, fed by the table contracts: no per-table copies."""

import dagster as dg

from alvh_pipeline.partitions import backfill_policy, trading_days
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES
from alvh_pipeline.sources.resource import MarketSource



def _failures_markdown(gate) -> str:
    rows = ["| expectation | column | why | rows | partitions |", "|---|---|---|---|---|"]
    for f in gate.report.failures:
        rows.append(f"| {f.expectation} | {f.column} | {f.why} | {f.unexpected_count} | "
                    f"{', '.join(f.partitions[:5])}{'…' if len(f.partitions) > 5 else ''} |")
    return "\n".join(rows)


def build_table_assets(table: str) -> list:
    contract = CONTRACTS[table]
    raw_key = dg.AssetKey(["raw", table])

    @dg.asset(key=raw_key, partitions_def=trading_days, backfill_policy=backfill_policy, group_name="raw",
              kinds={"parquet"}, description=f"{contract.description} As delivered by the source.",
              metadata={"contract": dg.TableSchema(columns=[dg.TableColumn(n, str(t), description=d)
                                                              for n, t, d in contract.columns])})
    def raw_asset(context: dg.AssetExecutionContext, source: MarketSource, lake: LakeResource) -> dg.MaterializeResult:
        rows = {}
        for key in context.partition_keys:  # per partition: rows land in the file of the day they were asked for
            frame = source.fetch(table, [key])
            lake.lake.write_partition("raw", table, key, frame)
            rows[key] = len(frame)
        meta = {"rows": sum(rows.values()), "partitions": len(rows), "source": source.kind,
                "path": str(lake.lake.table_dir("raw", table))}
        if table == "equity_bars" and source.kind != "files":
            meta["planted_pairs"] = dg.MetadataValue.json(source.ground_truth()["planted_pairs"])
        return dg.MaterializeResult(metadata=meta)

    @dg.asset_check(asset=raw_key, name="ge_suite", blocking=True, partitions_def=trading_days,
                    description=f"Great Expectations suite raw_{table}: schema, dtypes, keys, bounds, row rules.")
    def ge_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        from alvh_pipeline.quality.gate import run_gate

        keys = list(context.partition_keys)
        gate = run_gate(lake.lake, table, keys)
        if not gate.passed:
            context.log.error(gate.message())
        samples = {f"{f.expectation}:{f.column}": f.sample for f in gate.report.failures if f.sample}
        return dg.AssetCheckResult(
            passed=gate.passed,
            description=gate.message().splitlines()[0],
            metadata={
                "table": table, "partitions": len(keys), "rows": gate.report.n_rows,
                "expectations": gate.report.n_expectations,
                "failed_expectations": len(gate.report.failures),
                "failed_partitions": dg.MetadataValue.json(gate.report.failed_partitions),
                "failures": dg.MetadataValue.md(_failures_markdown(gate)),
                "sample_rows": dg.MetadataValue.json(samples),
                "quarantine": str(lake.lake.table_dir("quarantine", table)),
            },
        )

    @dg.asset(key=["validated", table], deps=[raw_key], partitions_def=trading_days, backfill_policy=backfill_policy,
              group_name="validated", kinds={"parquet"},
              description=f"{contract.description} Typed to the contract; only partitions whose raw file passed "
                          f"the GE suite.",
              automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed())
    def validated_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        from alvh_pipeline.quality.gate import publish_validated

        rows = publish_validated(lake.lake, table, list(context.partition_keys))
        return dg.MaterializeResult(metadata={"rows": sum(rows.values()), "partitions": len(rows),
                                              "path": str(lake.lake.table_dir("validated", table))})

    return [raw_asset, validated_asset], [ge_check]


_BUILT = [build_table_assets(t) for t in RAW_TABLES]
ingest_assets = [a for assets, _ in _BUILT for a in assets]
ingest_checks = [c for _, checks in _BUILT for c in checks]
