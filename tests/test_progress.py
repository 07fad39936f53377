"""Progress of a run on the terminal (issue 11): the counts printed come from the run's own
events and match what was materialized, both where the output is a terminal (one line rewritten
in place) and where it is not (a line per step, as in CI logs); a failed check is printed at once."""

import io
import re
import uuid
import warnings

import dagster as dg
import pytest

from alvh_pipeline.definitions import defs
from alvh_pipeline.progress import RunProgress
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.sources.resource import MarketSource

warnings.filterwarnings("ignore", category=dg.BetaWarning)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(tmp_path, out, start="2024-03-04", end="2024-03-05"):
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("ingest")
    run_id = str(uuid.uuid4())
    with RunProgress(instance, run_id, "ingest", job, 2, out=out, interval=0.2) as progress:
        result = job.execute_in_process(
            instance=instance, run_id=run_id, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            resources={"lake": LakeResource(root=str(tmp_path / "lake")), "source": MarketSource()},
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end})
    return result, progress, job


@pytest.mark.parametrize("stream", [io.StringIO, Terminal])
def test_printed_counts_match_what_was_materialized(tmp_path, stream):
    out = stream()
    result, progress, job = _run(tmp_path, out)
    assert result.success
    materialized = len(result.get_asset_materialization_events())
    text = out.getvalue()
    final = re.findall(r"steps (\d+)/(\d+), partitions materialized (\d+)", text)[-1]
    assert int(final[0]) == int(final[1]) == len(job.graph.nodes)
    assert int(final[2]) == materialized == 18 * 2  # raw + validated for 9 tables, 2 sessions
    if stream is Terminal:
        assert "\r" in text  # one line rewritten in place
    else:
        assert "\r" not in text and text.count("\n") == len(job.graph.nodes)  # a line per ended step


def test_a_failed_check_is_printed_at_once(tmp_path):
    lake = tmp_path / "lake"
    drop = tmp_path / "drop"
    drop.mkdir()
    from alvh_pipeline.schemas import RAW_TABLES
    from alvh_pipeline.sources import synthetic

    for t in RAW_TABLES:
        frame = synthetic.generate(t, ["2024-03-05"])
        if t == "vix_futures":
            frame.loc[0, "bid"] = frame.loc[0, "ask"] + 1.0  # a crossed quote
        frame.to_csv(drop / f"{t}.csv", index=False)
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("ingest")
    run_id = str(uuid.uuid4())
    out = io.StringIO()
    with RunProgress(instance, run_id, "ingest", job, 1, out=out, interval=0.2):
        job.execute_in_process(instance=instance, run_id=run_id, raise_on_error=False, partition_key="2024-03-05",
                               run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                               resources={"lake": LakeResource(root=str(lake)),
                                          "source": MarketSource(kind="files", files_root=str(drop))})
    assert re.search(r"raw/vix_futures:ge_suite FAILED: raw/vix_futures: \d+ of \d+ rules failed", out.getvalue())
