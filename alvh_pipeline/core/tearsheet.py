"""The tearsheet: one PNG of five panels (equity and P&L by leg, drawdown, the hedge ladder's
notional by layer, sizing-cap use, margin used vs equity) and a self-contained HTML report with
the picture, the metrics per mode and the verdict. matplotlib (Agg, no display); pure otherwise.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd

GROUPS = ("condor", "statarb", "L1", "L2", "L3", "synthetic", "static")


def ladder_notional(alvh_legs: pd.DataFrame) -> pd.DataFrame:
    """Per (date, mode, layer): Σ |quantity × multiplier × underlying level|, USD."""
    if not len(alvh_legs):
        return pd.DataFrame(columns=["date", "mode", "layer", "notional"])
    n = (alvh_legs["quantity"] * alvh_legs["multiplier"] * alvh_legs["underlying"]).abs()
    out = n.groupby([pd.to_datetime(alvh_legs["date"]), alvh_legs["mode"], alvh_legs["layer"]]).sum()
    return out.rename("notional").reset_index()


def figure_png(daily: pd.DataFrame, account: pd.DataFrame, alvh_legs: pd.DataFrame, dpi: int = 80) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    daily = daily.assign(date=pd.to_datetime(daily["date"])).sort_values("date")
    account = account.assign(date=pd.to_datetime(account["date"])).sort_values("date")
    modes = sorted(daily["mode"].unique())
    fig, axes = plt.subplots(5, len(modes), figsize=(6 * len(modes), 15), squeeze=False, sharex=True)
    notional = ladder_notional(alvh_legs)
    for j, mode in enumerate(modes):
        d = daily[daily["mode"] == mode].set_index("date")
        a = account[account["mode"] == mode].set_index("date")
        ax = axes[0, j]
        ax.plot(d.index, d["equity"], color="black", lw=1.5, label="equity")
        base = d["equity"].iloc[0] - d["equity_change"].iloc[0]
        for g in GROUPS:
            ax.plot(d.index, base + d[f"pnl_{g}"].cumsum(), lw=0.9, label=f"{g} P&L (cum.)")
        ax.set_title(f"{mode}: equity and P&L by leg (USD)")
        ax.legend(fontsize=7, ncol=2)
        peak = d["equity"].cummax()
        axes[1, j].fill_between(d.index, 100 * (d["equity"] / peak - 1), 0, color="firebrick", alpha=0.5)
        axes[1, j].set_title("drawdown (%)")
        n = notional[notional["mode"] == mode].pivot_table(index="date", columns="layer", values="notional",
                                                           aggfunc="sum").reindex(d.index).fillna(0.0)
        if len(n.columns):
            axes[2, j].stackplot(n.index, n.T.to_numpy(), labels=list(n.columns), alpha=0.8)
            axes[2, j].legend(fontsize=7, loc="upper left")
        axes[2, j].set_title("hedge ladder notional by layer (USD)")
        cap = a["cap_dollars"].to_numpy(float)
        use = np.where(cap > 0, a["vx_delta_dollars"].to_numpy(float) / np.where(cap > 0, cap, 1.0), 0.0)
        axes[3, j].plot(a.index, 100 * use, color="purple")
        axes[3, j].axhline(100, color="red", ls="--", lw=0.8)
        axes[3, j].set_title("sizing-cap use (% of cap x the program's notional)")
        axes[4, j].plot(a.index, a["equity"], color="black", label="equity")
        axes[4, j].plot(a.index, a["margin_requirement"], color="darkorange", label="margin used")
        calls = a[a["margin_call"].astype(bool)]
        axes[4, j].scatter(calls.index, calls["margin_requirement"], color="red", s=12, label="margin call", zorder=3)
        axes[4, j].legend(fontsize=7)
        axes[4, j].set_title("margin used vs equity (USD)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})  # no timestamp: reproducible bytes
    plt.close(fig)
    return buf.getvalue()


def report_html(png: bytes, performance: pd.DataFrame, verdict_md: str, title: str) -> str:
    """A self-contained page: the picture (embedded), the metrics per mode, the verdict."""
    img = base64.b64encode(png).decode()
    table = performance.to_html(float_format=lambda x: f"{x:.4g}", border=0)
    verdict = "".join(f"<p>{html.escape(line)}</p>" for line in verdict_md.splitlines() if line.strip())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
            "td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><h2>Metrics per mode</h2>{table}<h2>Verdict</h2>{verdict}"
            f"<h2>Charts</h2><img alt='tearsheet' src='data:image/png;base64,{img}'/></body></html>")
