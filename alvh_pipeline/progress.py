"""Progress of a running job on the terminal, driven by the run's own events in the Dagster
instance (not by guesses): steps done / total, the step being computed, partitions materialized,
elapsed time and an estimate of what is left; a failed check is printed the moment its evaluation
is recorded, with its report's first line. On a terminal one line is rewritten in place; elsewhere
(CI logs) a line is printed each time a step ends."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

import dagster as dg

EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
          dg.DagsterEventType.STEP_SKIPPED, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
ENDED = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED}


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def asset_steps(job: dg.JobDefinition) -> dict[str, int]:
    """Step key -> the assets it materializes, for each of the job's asset steps (a check step
    materializes none)."""
    from dagster._core.definitions.dependency import NodeHandle

    layer = job.asset_layer
    return {node.name: sum(isinstance(k, dg.AssetKey)
                           for k in layer.get_selected_entity_keys_for_node(NodeHandle(node.name, None)))
            for node in job.graph.nodes}


class RunProgress:
    """Polls the instance for the run's events in a background thread while it executes. The
    partitions materialized are counted when a step succeeds (its assets x the run's partitions),
    not from the materialization events: one per asset and partition, a year's ingest run holds
    4,500 and reading them back cost 5-8 % of the run."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, label: str, job: dg.JobDefinition,
                 partitions: int, out: TextIO | None = None, interval: float = 1.0,
                 tty: bool | None = None) -> None:
        self.instance, self.run_id, self.label = instance, run_id, label
        self.assets_of = asset_steps(job)
        self.steps_total, self.partitions = len(self.assets_of), max(partitions, 1)
        self.out = out or sys.stdout
        # None: rewrite one line in place on a terminal; False: lines (CI logs, or runs side by side)
        self.tty = bool(getattr(self.out, "isatty", lambda: False)()) if tty is None else tty
        self.interval = interval
        self.cursor: str | None = None
        self.steps_done = 0
        self.current = ""
        self.materialized: dict[str, int] = {}
        self.failed_checks: list[str] = []
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RunProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()  # whatever was recorded after the last tick
        if self.tty:
            self.out.write("\n")
        self.out.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # a busy SQLite file: try again on the next tick
                continue

    def poll(self) -> None:
        conn = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, of_type=EVENTS)
        self.cursor = conn.cursor
        for record in conn.records:
            self._on_event(record.event_log_entry.dagster_event)

    def _on_event(self, event: dg.DagsterEvent | None) -> None:
        if event is None:
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self.current = event.step_key or ""
            self._show()
        elif kind in ENDED:
            self.steps_done += 1
            if kind == dg.DagsterEventType.STEP_SUCCESS:
                self.materialized[event.step_key or ""] = self.assets_of.get(event.step_key or "", 0) * self.partitions
            self._show(step_ended=True)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                line = (f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} FAILED: "
                        f"{evaluation.description}")
                self.failed_checks.append(line)
                self._write(f"  {self.label}: {line}", newline=True)

    def line(self) -> str:
        elapsed = time.time() - self.started
        left = elapsed / self.steps_done * (self.steps_total - self.steps_done) if self.steps_done else float("nan")
        eta = f", ~{_clock(left)} left" if left == left else ""
        partitions = sum(self.materialized.values())
        return (f"  {self.label}: steps {self.steps_done}/{self.steps_total}, partitions materialized "
                f"{partitions}, {_clock(elapsed)} elapsed{eta}" + (f"; now {self.current}" if self.current else ""))

    def _show(self, step_ended: bool = False) -> None:
        if self.tty:
            self._write("\r" + self.line()[:150].ljust(150), newline=False)
        elif step_ended:
            self._write(self.line(), newline=True)

    def _write(self, text: str, newline: bool) -> None:
        if self.tty and newline:
            text = "\r" + text.ljust(150)
        self.out.write(text + ("\n" if newline else ""))
        self.out.flush()
