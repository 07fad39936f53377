"""Every user setting, with its one default, and the resources that carry them to the assets.

- `LakeResource`: where the lake is (`ALVH_LAKE_URI`; `AWS_ENDPOINT_URL` for an S3-compatible store).
- `MarketSource` (class in `sources/resource.py`): which source (`ALVH_SOURCE`, `ALVH_SEED`,
  `ALVH_N_EQUITIES`, `ALVH_FILES_ROOT`, `ALVH_FALLBACK`, `ALVH_FILES_TABLES`, `ALVH_VENDOR`).
- `StrategyConfig`: what a user tunes about the strategy and the gate (hedge cap, stress move,
  account equity, costs, allocation modes, stale-quote threshold).
- `run_workers()`: how many runs `cli run` executes at once (`ALVH_RUN_WORKERS`, default 2: this
  project's 2-core machine, and the run queue's limit in dagster.yaml; 1 = one after the other in
  the CLI's own process).
- `ExecutorSettings`: which Dagster executor runs a launched run's steps (`ALVH_EXECUTOR`,
  `ALVH_CELERY_BROKER`, `ALVH_CELERY_BACKEND`; see `executors.py`).

Each field's default lives on the class. An environment variable, when set, overrides it: text and
integer settings through `dg.EnvVar`, which Dagster resolves when a run launches (the launchpad
shows where the value comes from); float settings are read when the code location loads (Dagster
has no float EnvVar), and a value that is not a number is refused there, naming the variable. Run
config overrides both. This is the only module that looks at the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import dagster as dg
from pydantic import Field, field_validator

from alvh_pipeline.lake import DEFAULT_LAKE, Lake
from alvh_pipeline.sources.resource import MarketSource

MODES = ("steward", "promoter")
FILL_TIMINGS = ("close", "next")


class LakeResource(dg.ConfigurableResource):
    """The Parquet lake's root: a local path (or `file://` URI), or `s3://bucket/prefix`."""

    root: str = Field(default=DEFAULT_LAKE,
                      description="lake root: a local path, file:// or s3://bucket/prefix URI (env ALVH_LAKE_URI)")
    # pyarrow's S3 client reads credentials and region from the AWS_* variables itself, but not the endpoint
    s3_endpoint: str = Field(default="", description="S3-compatible server of an s3:// root, e.g. "
                                                     "http://127.0.0.1:9000; empty: AWS (env AWS_ENDPOINT_URL)")

    @property
    def lake(self) -> Lake:
        return Lake.from_uri(self.root, self.s3_endpoint or None)


class StrategyConfig(dg.ConfigurableResource):
    """What a user tunes. Money in USD; VIX moves in index points."""

    account_equity: float = Field(default=100_000.0, gt=0, description="starting account equity, USD")
    hedge_cap: float = Field(default=0.20, ge=0.15, le=0.20,
                             description="sizing rule: the ALVH ladder's net VIX-futures delta dollars <= cap x the "
                                         "condor program's notional risk (kept between cycles)")
    stress_move_vix_points: float = Field(default=10.0, gt=0, description="stress move of spot VIX in the sizing rule")
    modes: list[str] = Field(default=list(MODES), description="allocation modes computed side by side")
    condor_risk_per_cycle: float = Field(default=0.10, gt=0, le=1,
                                         description="the condor program's size: a cycle's max loss <= this x equity")
    condor_exits: str = Field(default="expiry", description="condor program: 'expiry' (Cboe CNDR rules, held to "
                                                            "expiry) or 'managed' (16-delta, 50 % profit, 2x stop, "
                                                            "21 DTE; triggers on mid)")
    hedge_spend_per_month: float = Field(default=0.03, ge=0, le=1,
                                         description="steward: hedge option premium per month, fraction of the hedge "
                                                     "sleeve")
    hedge_band: float = Field(default=0.25, ge=0, description="hysteresis: re-size the VX calendar only when its "
                                                              "target moved by more than this share")
    gross_limit: float = Field(default=2.0, ge=1, le=4, description="promoter: stat-arb gross notional <= this x "
                                                                   "equity (Reg-T 2x)")
    promoter_vx_share: float = Field(default=0.30, ge=0, le=2, description="promoter: static long VX futures "
                                                                          "notional, share of equity")
    short_borrow_fee: float = Field(default=0.005, ge=0, description="a year on short stock value (assumption): "
                                                                     "short proceeds earn the T-bill less this")
    fill_timing: str = Field(default="close", description="'close': a decision at the close fills at that close's "
                                                          "bid/ask; 'next': at the next session's bid/ask")
    spx_option_fee_per_contract: float = Field(default=0.65, ge=0, description="commission + fees, USD/contract")
    vix_option_fee_per_contract: float = Field(default=0.65, ge=0, description="commission + fees, USD/contract")
    vx_future_fee_per_contract: float = Field(default=2.00, ge=0, description="commission + fees, USD/contract")
    equity_fee_per_share: float = Field(default=0.005, ge=0, description="commission, USD/share")
    stale_threshold: float = Field(default=0.2, ge=0, le=1,
                                   description="quality gate: largest share of unchanged quotes a day may have")

    def book_config(self):
        """The books engine's settings (core.books.BookConfig) from these values."""
        from alvh_pipeline.core.books import BookConfig

        return BookConfig(
            account_equity=self.account_equity, hedge_cap=self.hedge_cap,
            stress_move_vix_points=self.stress_move_vix_points, modes=tuple(self.modes),
            condor_risk_per_cycle=self.condor_risk_per_cycle,
            hedge_spend_per_month=self.hedge_spend_per_month, spx_option_fee=self.spx_option_fee_per_contract,
            vix_option_fee=self.vix_option_fee_per_contract, vx_future_fee=self.vx_future_fee_per_contract,
            equity_fee_per_share=self.equity_fee_per_share, hedge_band=self.hedge_band, gross_limit=self.gross_limit,
            promoter_vx_share=self.promoter_vx_share, short_borrow_fee=self.short_borrow_fee,
            condor_rules=condor_rules(self.condor_exits), fill_timing=self.fill_timing)

    @field_validator("fill_timing")
    @classmethod
    def _known_timing(cls, timing: str) -> str:
        if timing not in FILL_TIMINGS:
            raise ValueError(f"fill_timing must be one of {FILL_TIMINGS}; got {timing!r}")
        return timing

    @field_validator("condor_exits")
    @classmethod
    def _known_exits(cls, exits: str) -> str:
        condor_rules(exits)
        return exits

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, modes: list[str]) -> list[str]:
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes:
            raise ValueError(f"modes must be a non-empty subset of {MODES}; got {modes}")
        return modes


# setting -> environment variable that overrides its default, per resource
_ENV = {
    "lake": {"root": "ALVH_LAKE_URI", "s3_endpoint": "AWS_ENDPOINT_URL"},
    "source": {"kind": "ALVH_SOURCE", "seed": "ALVH_SEED", "n_equities": "ALVH_N_EQUITIES",
               "files_root": "ALVH_FILES_ROOT", "fallback": "ALVH_FALLBACK", "files_tables": "ALVH_FILES_TABLES",
               "vendor": "ALVH_VENDOR"},
    "strategy": {"account_equity": "ALVH_ACCOUNT_EQUITY", "hedge_cap": "ALVH_HEDGE_CAP",
                 "stress_move_vix_points": "ALVH_STRESS_MOVE", "stale_threshold": "ALVH_STALE_THRESHOLD"},
}
_CLASSES = {"lake": LakeResource, "source": MarketSource, "strategy": StrategyConfig}


def condor_rules(exits: str):
    """The condor program's rule set by name: 'expiry' (CNDR, held to expiry) or 'managed'."""
    from alvh_pipeline.core.condor import CNDR_RULES, MANAGED_RULES

    rules = {"expiry": CNDR_RULES, "managed": MANAGED_RULES}
    if exits not in rules:
        raise ValueError(f"condor_exits must be one of {sorted(rules)}; got {exits!r}")
    return rules[exits]


def _env_overrides(key: str) -> dict:
    cls = _CLASSES[key]
    out = {}
    for field_name, var in _ENV[key].items():
        if var not in os.environ:
            continue
        annotation = cls.model_fields[field_name].annotation
        # dg.EnvVar (str, int) is resolved when a run launches; Dagster has no float EnvVar, so a
        # float is read when the code location loads, and refused there if it is not a number
        if annotation is int:
            out[field_name] = dg.EnvVar.int(var)
        elif annotation is float:
            try:
                out[field_name] = float(os.environ[var])
            except ValueError:
                raise ValueError(f"environment variable {var}={os.environ[var]!r} is not a number") from None
        else:
            out[field_name] = dg.EnvVar(var)
    return out


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location: defaults, overridden by the environment."""
    return {key: cls(**_env_overrides(key)) for key, cls in _CLASSES.items()}


def lake_root() -> str:
    """The lake root outside a Dagster run (CLI, benchmarks): env, else the default."""
    return os.environ.get("ALVH_LAKE_URI", DEFAULT_LAKE)


def lake_from_env() -> Lake:
    """The lake outside a Dagster run (CLI): the root and S3 endpoint from the env, else the defaults."""
    return Lake.from_uri(lake_root(), os.environ.get("AWS_ENDPOINT_URL"))


def quiet_great_expectations() -> None:
    """GE sends usage analytics unless told not to; a user's own setting wins."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def dagster_home() -> str:
    return os.environ.get("DAGSTER_HOME", "(ephemeral)")


EXECUTORS = ("multiprocess", "in_process", "celery", "k8s")
DEFAULT_CELERY_BROKER = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class ExecutorSettings:
    """Which engine runs a launched run's steps (`executors.executor_def`): `ALVH_EXECUTOR`, and for
    Celery its broker (`ALVH_CELERY_BROKER`) and result backend (`ALVH_CELERY_BACKEND`, default:
    the broker). Read when the code location loads, since the executor is part of the definitions."""

    # every step in the run's process: on 2 cores a process per step (Dagster's default, each
    # importing the project) made a UI backfill of 5 ingest sessions take minutes instead of ~20 s;
    # the daemon still runs 2 runs at once (dagster.yaml's run queue)
    kind: str = "in_process"
    celery_broker: str = DEFAULT_CELERY_BROKER
    celery_backend: str = DEFAULT_CELERY_BROKER


def executor_settings() -> ExecutorSettings:
    kind = os.environ.get("ALVH_EXECUTOR") or ExecutorSettings.kind  # set but empty = the default
    if kind not in EXECUTORS:
        raise ValueError(f"environment variable ALVH_EXECUTOR={kind!r} is not one of {', '.join(EXECUTORS)}")
    broker = os.environ.get("ALVH_CELERY_BROKER") or DEFAULT_CELERY_BROKER
    return ExecutorSettings(kind, broker, os.environ.get("ALVH_CELERY_BACKEND") or broker)


RUN_WORKERS = 2


def run_workers() -> int:
    """`cli run`'s worker processes (`run_schedule.execute`)."""
    value = os.environ.get("ALVH_RUN_WORKERS") or str(RUN_WORKERS)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"environment variable ALVH_RUN_WORKERS={value!r} is not a whole number >= 1")
    return int(value)


EVENT_BATCH_SIZE = 1000  # events per stored batch: a 252-session run's materializations of one asset in one


def enable_event_batches() -> None:
    """Dagster buffers batchable events (a range run's planned events, an asset's per-partition
    materializations) only when DAGSTER_EVENT_BATCH_SIZE is set, read at each event: the project's
    event log storages write a batch in one go, so they turn it on (a user's own value wins)."""
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))
