"""The UI as a person uses it (issue 10): `dagster dev` (webserver + daemon) on 127.0.0.1 over the
project's instance settings (`dagster.yaml.example`), a temp lake and the synthetic source, driven by
playwright through Debian's chromium (never a downloaded browser). The test opens the asset lineage
and sees every layer's groups, opens a partitioned asset's partition health, opens a failed GE check
and reads the offending rows in its metadata, and launches a 5-session backfill of `ingest` from the
Materialize dialog, then waits for it to succeed (in the UI and in the instance).

Screenshots of each step go to `$ALVH_TEST_ARTIFACTS/ui/` (default `.test-artifacts/ui/`); a failing
step also leaves `<step>-FAILED.png` / `.html` and the server's log `dagster-dev.log` there."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import pytest
from webserver import free_port, graphql

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ALVH_TEST_ARTIFACTS", ROOT / ".test-artifacts")) / "ui"
CHROMIUM = Path("/usr/bin/chromium")
# headless, and nothing that phones home or updates itself while the test runs
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
LOCATION = "alvh_pipeline.definitions"  # the code location name workspace.yaml gives the module
BAD_DAY = "2024-03-05"  # the files source delivers a crossed VX quote on this day
FAILING = ("raw", "vix_futures")
PARTITIONED = ("validated", "spx_options")
BACKFILL_RANGE = ("2024-01-02", "2024-01-08")  # 5 NYSE sessions (New Year's Day is a holiday)
UI_TIMEOUT_MS = 60_000  # the webserver answers slowly while a run shares the 2 cores
SERVER_START_S = 180
BACKFILL_S = 240



def _chromium() -> Path:
    if not CHROMIUM.exists():  # the project's installer for the scale-out servers, from Debian's packages
        subprocess.run(["bash", str(ROOT / "scripts" / "servers" / "install.sh")], check=False, timeout=1200)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing: run scripts/servers/install.sh (installs Debian's chromium)")
    return CHROMIUM


def _produce_failed_check(home: Path, lake: Path, drop: Path) -> pd.Series:
    """Run `ingest` for BAD_DAY in-process on the instance the UI will serve, with the files source
    delivering one crossed VX quote: raw/vix_futures' blocking GE check fails, with the row in its
    metadata. Returns the offending row as delivered."""
    import dagster as dg

    from alvh_pipeline.definitions import defs
    from alvh_pipeline.resources import LakeResource
    from alvh_pipeline.schemas import RAW_TABLES
    from alvh_pipeline.sources import synthetic
    from alvh_pipeline.sources.resource import MarketSource

    drop.mkdir()
    for table in RAW_TABLES:
        synthetic.generate(table, [BAD_DAY]).to_csv(drop / f"{table}.csv", index=False)
    bad = pd.read_csv(drop / "vix_futures.csv")
    bad.loc[0, "bid"] = bad.loc[0, "ask"] + 1.0  # crossed quote
    bad.to_csv(drop / "vix_futures.csv", index=False)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = defs.resolve_job_def("ingest").execute_in_process(
            partition_key=BAD_DAY, instance=instance, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            resources={"lake": LakeResource(root=str(lake)),
                       "source": MarketSource(kind="files", files_root=str(drop))})
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert [c.asset_key.path for c in failed] == [list(FAILING)], failed
    return bad.iloc[0]


def _stop(proc: subprocess.Popen) -> None:
    """Stop `dagster dev` and everything it started (webserver, daemon, code servers, run workers):
    they share its process group."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with suppress(ProcessLookupError):  # whatever did not stop in time, run workers included
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@contextmanager
def _dagster_dev(home: Path, lake: Path, log_path: Path) -> Iterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALVH_")}  # only this test's settings
    # the project's default executor (in_process: one process per run, as a user's `make ui` has it)
    env.update(DAGSTER_HOME=str(home), ALVH_LAKE_URI=str(lake), ALVH_SOURCE="synthetic",
               GX_ANALYTICS_ENABLED="False", PYTHONWARNINGS="ignore::DeprecationWarning")
    dagster = Path(sys.executable).with_name("dagster")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + SERVER_START_S
            data: dict = {}
            while time.monotonic() < deadline:  # bounded wait for the webserver and the code location
                assert proc.poll() is None, f"dagster dev exited ({proc.returncode}); log: {log_path}"
                with suppress(OSError):
                    data = graphql(port, "{ shouldShowNux assetNodes { id } }").get("data") or {}
                    if data.get("assetNodes"):
                        break
                time.sleep(1)
            assert data.get("assetNodes"), f"the code location did not load in {SERVER_START_S} s; log: {log_path}"
            # dagster.yaml.example turns the first-run modal off: it would cover every page below
            assert data["shouldShowNux"] is False
            yield port
        finally:
            _stop(proc)


class Steps:
    """Screenshots per step; a failing step also saves the page (PNG + HTML) before raising."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.shots: list[Path] = []

    def shot(self, name: str) -> None:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), animations="disabled")  # dialogs fade in: capture them settled
        self.shots.append(path)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            with suppress(Exception):
                self.page.screenshot(path=str(ARTIFACTS / f"{name}-FAILED.png"), full_page=True)
                (ARTIFACTS / f"{name}-FAILED.html").write_text(self.page.content())
            raise


def _wait_for_text(page: Page, pattern: re.Pattern) -> None:
    """Wait until the page's rendered text (layout line breaks kept) matches `pattern`."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while not pattern.search(text := page.locator("body").inner_text()):
        assert time.monotonic() < deadline, f"{pattern.pattern!r} not on {page.url}: {text[-2000:]}"
        page.wait_for_timeout(1000)


def _dialog_json(page: Page, title: str) -> dict:
    dialog = page.get_by_role("dialog").filter(has_text=title)
    expect(dialog).to_be_visible()
    text = dialog.inner_text()
    return json.loads(text[text.index("{"): text.rindex("}") + 1])


@pytest.mark.slow
def test_ui_as_a_person_uses_it(tmp_path, monkeypatch):
    import dagster as dg

    from alvh_pipeline.layers import LAYERS
    from alvh_pipeline.partitions import trading_days

    chromium = _chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.html")]:  # no stale screenshot passes for new
        old.unlink()
    home, lake = tmp_path / "dagster_home", tmp_path / "lake"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml.example", home / "dagster.yaml")  # what `make install` ships
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the shipped event log storage finds its files by it
    bad_row = _produce_failed_check(home, lake, tmp_path / "drop")
    sessions = trading_days.get_partition_keys_in_range(dg.PartitionKeyRange(*BACKFILL_RANGE))
    assert len(sessions) == 5
    groups = [group for entry in LAYERS for group in entry.groups]

    with (_dagster_dev(home, lake, ARTIFACTS / "dagster-dev.log") as port,
          dg.DagsterInstance.from_config(str(home)) as instance, sync_playwright() as pw):
        base = f"http://127.0.0.1:{port}"
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            ui = Steps(page)

            with ui.step("1-lineage"):  # every layer's groups are nodes of the lineage graph
                page.goto(f"{base}/asset-groups")
                expect(page.get_by_text("Global asset lineage")).to_be_visible()
                graph = page.locator("svg foreignObject")  # the graph's nodes (the sidebar lists groups too)
                for group in groups:
                    expect(graph.get_by_text(group, exact=True).first).to_be_visible()
                ui.shot("1-lineage")

            partitioned = dg.AssetKey(list(PARTITIONED))
            with ui.step("2-partition-health"):  # the partitions view counts what the instance holds
                page.goto(f"{base}/assets/{'/'.join(PARTITIONED)}")
                page.get_by_text("Partitions", exact=True).first.click()
                before = len(instance.get_materialized_partitions(partitioned))
                assert before >= 1  # BAD_DAY: only raw/vix_futures' check failed, this table published
                expect(page.get_by_text(f"Materialized ({before})", exact=True)).to_be_visible()
                expect(page.get_by_text(re.compile(r"^Missing \([\d,]+\)$")).first).to_be_visible()
                ui.shot("2-partition-health")

            with ui.step("3-failed-check"):  # the failed GE check and its offending rows
                page.goto(f"{base}/assets/{'/'.join(FAILING)}?view=checks")
                page.get_by_text("ge_suite", exact=True).first.click()
                expect(page.get_by_text(re.compile(rf"quote not crossed.*{BAD_DAY}")).first).to_be_visible()
                ui.shot("3-failed-check")
                page.get_by_role("row").filter(has_text="sample_rows").get_by_text("[Show JSON]").click()
                samples = _dialog_json(page, "sample_rows")
                ui.shot("3-failed-check-sample-rows")
                rows = [r for rule, rs in samples.items() if "bid,ask" in rule for r in rs]
                assert [(r["contract"], r["bid"], r["ask"]) for r in rows] == [
                    (bad_row["contract"], float(bad_row["bid"]), float(bad_row["ask"]))], samples
                page.get_by_role("dialog").get_by_role("button", name="Close").click()
                page.get_by_role("row").filter(has_text="failures").get_by_text("[Show Markdown]").click()
                failures = page.get_by_role("dialog").filter(has_text="failures")
                for text in ("bid,ask", "quote not crossed (bid <= ask)", BAD_DAY):
                    expect(failures.get_by_text(text, exact=True).first).to_be_visible()
                ui.shot("3-failed-check-failures")
                failures.get_by_role("button", name="Close").click()

            with ui.step("4-backfill"):  # Materialize all -> 5 sessions -> Launch backfill
                page.goto(f"{base}/locations/{LOCATION}/jobs/ingest")
                page.get_by_role("button", name="Materialize all…").click()
                dialog = page.get_by_role("dialog").filter(has_text="Launch backfill")
                dialog.get_by_text("Show all partitions").click()  # the default window is the last 90 days
                box = dialog.get_by_role("textbox").first
                box.fill(f"[{BACKFILL_RANGE[0]}...{BACKFILL_RANGE[1]}]")
                box.press("Enter")
                expect(dialog.get_by_text(f"{len(sessions)} partitions", exact=True)).to_be_visible()
                ui.shot("4-backfill-dialog")
                dialog.get_by_role("button", name="Launch backfill").click()
                toast = page.get_by_text(re.compile(r"Created backfill \w+")).first
                expect(toast).to_be_visible()
                backfill_id = re.search(r"Created backfill (\w+)", toast.inner_text()).group(1)
                backfill = instance.get_backfill(backfill_id)
                assert backfill is not None and sorted(backfill.partition_names) == list(sessions)

                deadline = time.monotonic() + BACKFILL_S
                # the daemon launches the run, then marks the backfill done (BulkActionStatus, by name)
                while (status := instance.get_backfill(backfill_id).status.value) == "REQUESTED":
                    assert time.monotonic() < deadline, f"backfill {backfill_id} still {status} after {BACKFILL_S} s"
                    time.sleep(3)
                page.goto(f"{base}/runs/b/{backfill_id}")
                runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
                assert status == "COMPLETED_SUCCESS", (status, [(r.run_id, r.status.value) for r in runs])
                assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), runs
                expect(page.get_by_text("100% completed")).to_be_visible()
                _wait_for_text(page, re.compile(r"Status\s*\n\s*Succeeded"))  # the backfill's status tag
                ui.shot("4-backfill-succeeded")

            with ui.step("5-partition-health-after-backfill"):
                materialized = instance.get_materialized_partitions(partitioned)
                assert set(sessions) <= materialized and len(materialized) == before + len(sessions)
                page.goto(f"{base}/assets/{'/'.join(PARTITIONED)}")
                page.get_by_text("Partitions", exact=True).first.click()
                expect(page.get_by_text(f"Materialized ({len(materialized)})", exact=True)).to_be_visible()
                missing = page.get_by_text(re.compile(r"^Missing \([\d,]+\)$")).first
                missing.click()  # hide the missing partitions: the list shows what is there
                expect(page.get_by_text(re.compile(rf"^{len(materialized)} Partitions? Selected$"))).to_be_visible()
                for key in sorted(materialized):
                    expect(page.get_by_text(key, exact=True).first).to_be_visible()
                ui.shot("5-partition-health-after-backfill")
        finally:
            browser.close()

    assert all(p.stat().st_size > 10_000 for p in ui.shots), ui.shots  # real page images, not blanks
