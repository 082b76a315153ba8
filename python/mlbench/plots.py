"""The notebook's figures, each from the tables mlbench.stats returns (matplotlib, no state)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

COLOURS = {"python": "#3776ab", "rust": "#b7410e"}


def label(row: pd.Series) -> str:
    params = ",".join(f"{k}={v}" for k, v in json.loads(row["params"]).items() if k not in ("tol", "max_iter"))
    return f"{row['task']}/{row['algorithm']} {row['dataset']} {params}".strip()


def forest(comparisons: pd.DataFrame, phase: str = "fit") -> Figure:
    """Rust/Python time ratio with its 95% CI per comparison, grouped by domain, log scale."""
    rows = comparisons[comparisons["phase"] == phase].sort_values(["domain", "task", "ratio"]).reset_index()
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        colour = "grey" if r["quality_mismatch"] else ("#2a9d4b" if r["verdict"] == "rust-faster" else
                                                       "#c0392b" if r["verdict"] == "python-faster" else "black")
        low = r["ci_low"] if np.isfinite(r["ci_low"]) else r["ratio"]
        high = r["ci_high"] if np.isfinite(r["ci_high"]) else r["ratio"]
        ax.plot([low, high], [yi, yi], color=colour, lw=2)
        ax.plot(r["ratio"], yi, "o", color=colour, mfc="white" if r["quality_mismatch"] else colour)
    ax.axvline(1, color="black", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [f"[{r['domain']}] {label(r)}" for _, r in rows.iterrows()], fontsize=8)
    ax.set_xlabel(f"{phase} time, Rust / Python (median, 95% bootstrap CI; < 1: Rust faster)")
    ax.set_title("Speed ratio per comparison (grey, hollow: quality mismatch, never a win)")
    fig.tight_layout()
    return fig


def memory(memory_table: pd.DataFrame) -> Figure:
    """Median peak RSS per comparison and language."""
    rows = memory_table.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.5))
    y = np.arange(len(rows))
    width = 0.4
    for offset, language in ((-width / 2, "python"), (width / 2, "rust")):
        column = f"peak_rss_mb_{language}"
        if column in rows:
            ax.barh(y + offset, rows[column], height=width, color=COLOURS[language], label=language)
    ax.set_yticks(y, [label(r) for _, r in rows.iterrows()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("peak RSS per repetition, MiB (median; process-wide VmHWM)")
    ax.set_title("Peak memory")
    ax.legend()
    fig.tight_layout()
    return fig


def quality_vs_time(comparisons: pd.DataFrame, phase: str = "fit") -> Figure:
    """Per task: each comparison's median time against its quality, one marker per language."""
    rows = comparisons[comparisons["phase"] == phase]
    tasks = sorted(rows["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        group = rows[rows["task"] == task]
        for language in ("python", "rust"):
            ax.scatter(group[f"median_{language}"], group[f"quality_{language}"], color=COLOURS[language],
                       label=language, alpha=0.8, marker="o" if language == "python" else "x", s=50)
        for _, r in group.iterrows():
            ax.plot([r["median_python"], r["median_rust"]], [r["quality_python"], r["quality_rust"]],
                    color="grey", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlabel(f"median {phase} time, s")
        ax.set_ylabel(group["quality_metric"].iloc[0])
        ax.set_title(f"{task}: quality against time (lines join the two sides of one comparison)")
        ax.legend()
    fig.tight_layout()
    return fig


def distributions(table: pd.DataFrame, task: str, phase: str = "fit") -> Figure:
    """Every measured repetition of one task, per comparison and language (strip plot)."""
    ok = table[(table["status"] == "ok") & (table["task"] == task)].copy()
    ok["label"] = ok.apply(label, axis=1)
    labels = sorted(ok["label"].unique())
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(labels) + 1.5))
    rng = np.random.default_rng(0)
    for i, name in enumerate(labels):
        for offset, language in ((-0.15, "python"), (0.15, "rust")):
            values = ok[(ok["label"] == name) & (ok["language"] == language)][f"time_{phase}"].dropna()
            jitter = rng.uniform(-0.06, 0.06, len(values))
            ax.scatter(values, i + offset + jitter, s=14, color=COLOURS[language],
                       label=language if i == 0 else None)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{phase} time per repetition, s (warm-ups excluded)")
    ax.set_title(f"{task}: distribution of repetitions")
    ax.legend()
    fig.tight_layout()
    return fig
