"""Running a plan's runs (`cli run`, `bench/backfill.py`) on several worker processes at once,
each run as soon as what it reads is written: the order a Dagster asset backfill gives the same
runs, without the daemon.

A run of layer L over [first, last] waits for
- every run of the layer before L that starts on or before `last`: no run reads a session after
  its own last one (no look-ahead), and its look-back lies in those earlier runs;
- with `Layer.ordered_runs`, every earlier run of L itself (ingest: the gate compares each session
  with the 20 before it).
A layer's reports (`layers.REPORTS_RUN`, planned as the next position) so wait for all its runs.

So on 2 cores ingest's runs follow each other on one worker while the other computes the features
and signals of the years ingest has finished; the books (one stateful run) start once the last
signals are written. Among runs that are ready, the earliest layer goes first (ingest is the
longest chain). After a failed run nothing new is launched, as the sequential order stopped there;
runs already going finish.

Pure scheduling: no Dagster import. What a run does is the `work` callable (module level, so a
worker process can import it): `cli.run_job`, or the benchmark's direct invocation.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlannedRun:
    layer: str
    position: int  # the layer's place in the lineage
    first: str  # YYYY-MM-DD: text order is time order
    last: str
    ordered: bool  # waits for the earlier runs of its own layer

    @property
    def label(self) -> str:
        return f"{self.layer} {self.first}..{self.last}"


def planned_runs(steps: Iterable[tuple[str, bool, Sequence[tuple[str, str]]]]) -> list[PlannedRun]:
    """One entry per run, from (layer name, ordered runs?, its (first, last) chunks) in lineage order."""
    return [PlannedRun(name, position, first, last, ordered)
            for position, (name, ordered, chunks) in enumerate(steps) for first, last in chunks]


def prerequisites(run: PlannedRun, runs: Sequence[PlannedRun]) -> list[PlannedRun]:
    """The runs that must have succeeded before `run` starts (module doc)."""
    return [r for r in runs
            if (r.position == run.position - 1 and r.first <= run.last)
            or (run.ordered and r.position == run.position and r.first < run.first)]


class _InProcessPool:
    """A pool of one: each run executes in this process when submitted, as the sequential CLI did."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed back through the future, as a pool does
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


def execute(runs: Sequence[PlannedRun], work: Callable[[PlannedRun], tuple[bool, Any]], workers: int,
            on_done: Callable[[PlannedRun, bool, Any], None] | None = None) -> dict[PlannedRun, tuple[bool, Any]]:
    """Run `work(run)` for each run in an order `prerequisites` allows, up to `workers` at once
    (each in its own long-lived process; 1: in this process). `work` returns (succeeded, payload).
    Returns what each launched run returned; a run never launched (after a failure) is absent."""
    needs = {r: set(prerequisites(r, runs)) for r in runs}
    pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1
            else _InProcessPool())
    done: dict[PlannedRun, tuple[bool, Any]] = {}
    going: dict[Future, PlannedRun] = {}
    failed = False
    try:
        while True:
            ready = [] if failed else sorted(
                (r for r in runs if r not in done and r not in going.values() and needs[r] <= done.keys()),
                key=lambda r: (r.position, r.first))
            for run in ready[:max(workers - len(going), 0)]:
                going[pool.submit(work, run)] = run
            if not going:
                break
            finished, _ = wait(list(going), return_when=FIRST_COMPLETED)
            for future in finished:
                run = going.pop(future)
                done[run] = future.result()
                failed |= not done[run][0]
                if on_done:
                    on_done(run, *done[run])
    finally:
        pool.shutdown(wait=True)
    return done
