"""Dagster assets, one module per layer. Partitioned asset checks and backfill policies are
marked preview/beta in Dagster 1.13; we rely on them knowingly, so their warnings are silenced."""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
