"""Running a plan's runs (`cli run`, `bench/backfill.py`) on several worker processes at once,
each run as soon as what it reads is written: the order a Dagster asset backfill gives the same
runs, without the daemon.

A run of layer L over [first, last] waits for
- every run of the layers L reads (`PlannedRun.after`; by default the layer planned before it)
  that starts on or before `last`: no run reads a session after its own last one (no look-ahead),
  and its look-back lies in those earlier runs;
- with `ordered`, every earlier run of L itself (a stateful layer: day t starts from day t-1).
A layer's reports (`layers.REPORTS_RUN`) so wait for all its runs.

Among runs that are ready, `execute` starts them in the order of `key`: by default the earliest
layer first; `cli run` passes `oldest_first` (the oldest sessions through every layer first), so
the stateful chain (books) follows a year behind ingest instead of waiting for the last year.
After a failed run nothing new is launched, as the sequential order stopped there; runs already
going finish.

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
    after: tuple[str, ...] | None = None  # the layers whose runs it waits for; None: the one planned before
    tables: tuple[str, ...] = ()  # the layer's tables it runs ("layer/table"); (): all

    @property
    def label(self) -> str:
        return f"{self.layer} {self.first}..{self.last}"


Chunk = tuple[str, str] | tuple[str, str, tuple[str, ...]]  # (first, last[, tables])
Entry = tuple[str, bool, Sequence[Chunk]] | tuple[str, bool, Sequence[Chunk], tuple[str, ...]]


def planned_runs(steps: Iterable[Entry]) -> list[PlannedRun]:
    """One entry per run, from (layer name, ordered runs?, its (first, last[, tables]) chunks[, the
    layers it waits for]) in lineage order."""
    out = []
    for position, (name, ordered, chunks, *after) in enumerate(steps):
        for first, last, *tables in chunks:
            out.append(PlannedRun(name, position, first, last, ordered, tuple(after[0]) if after else None,
                                  tuple(tables[0]) if tables else ()))
    return out


def prerequisites(run: PlannedRun, runs: Sequence[PlannedRun]) -> list[PlannedRun]:
    """The runs that must have succeeded before `run` starts (module doc)."""
    def read(r: PlannedRun) -> bool:
        return r.layer in run.after if run.after is not None else r.position == run.position - 1

    return [r for r in runs
            if (read(r) and r.first <= run.last)
            or (run.ordered and r.position == run.position and r.first < run.first)]


def layer_first(run: PlannedRun) -> tuple:
    return run.position, run.first


def oldest_first(run: PlannedRun) -> tuple:
    return run.first, run.position


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
            on_done: Callable[[PlannedRun, bool, Any], None] | None = None,
            key: Callable[[PlannedRun], Any] = layer_first) -> dict[PlannedRun, tuple[bool, Any]]:
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
                key=key)
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
