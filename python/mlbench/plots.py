"""The notebook's figures, each from the tables mlbench.stats returns (matplotlib, no state)."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlbench import stats

COLOURS = {"python": "#3776ab", "rust": "#b7410e"}
VERDICT_COLOURS = {"faster": "#2a9d4b", "slower": "#c0392b", "equivalent": "#1f5fa8", "inconclusive": "black"}
RUST_SHADES = ["#b7410e", "#e08e0b", "#7b3f00", "#d35400"]


def labelled(frame: pd.DataFrame) -> pd.Series:
    """One line per row: task/algorithm, dataset, the hyperparameters that vary, the Rust framework."""
    params = stats.param_labels(frame).replace("-", "")
    rust = frame["rust_framework"] if "rust_framework" in frame else pd.Series("", index=frame.index)
    return (frame["task"] + "/" + frame["algorithm"] + " " + frame["dataset"] + " " + params + " "
            + rust.map(lambda r: f"[{r}]" if r else "")).str.replace(r"\s+", " ", regex=True).str.strip()


def forest(comparisons: pd.DataFrame, phase: str = "fit") -> Figure:
    """Rust/Python time ratio with its 95% CI per comparison, grouped by domain, log scale."""
    rows = comparisons[comparisons["phase"] == phase].sort_values(["domain", "task", "ratio"]).reset_index()
    names = labelled(rows)
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        colour = "grey" if r["quality_mismatch"] else VERDICT_COLOURS.get(r["verdict"], "black")
        ax.fill_betweenx([yi - 0.4, yi + 0.4], 1 / (1 + r["margin"]), 1 + r["margin"], color="#dddddd", lw=0)
        low = r["ci_low"] if np.isfinite(r["ci_low"]) else r["ratio"]
        high = r["ci_high"] if np.isfinite(r["ci_high"]) else r["ratio"]
        ax.plot([low, high], [yi, yi], color=colour, lw=2)
        ax.plot(r["ratio"], yi, "o", color=colour, mfc="white" if r["quality_mismatch"] else colour)
    ax.axvline(1, color="black", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [f"[{r['domain']}] {names[i]}" for i, r in rows.iterrows()], fontsize=8)
    ax.set_xlabel(f"{phase} time, Rust / Python (median, 95% two-level bootstrap CI; < 1: Rust faster)")
    ax.set_title("Speed ratio per comparison; shaded: equivalence band ±m\n(green faster, red slower, blue "
                 "equivalent, black inconclusive; grey hollow: quality mismatch, never a win)", fontsize=9)
    fig.tight_layout()
    return fig


FOREST_ROWS = 60  # above this many comparisons in a phase, the forest shows one row per algorithm


def forest_by_algorithm(comparisons: pd.DataFrame, phase: str = "fit") -> Figure:
    """The forest of a large run: per task, algorithm and Rust framework, the geometric mean of its
    comparisons' ratios with a bootstrap CI, and how many were faster / equivalent / slower."""
    rows = comparisons[comparisons["phase"] == phase]
    groups = stats.summarize_groups(rows, ["domain", "task", "algorithm", "rust_framework"]).sort_values(
        ["domain", "task", "geomean_ratio"]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(groups) + 1.8))
    y = np.arange(len(groups))[::-1]
    for yi, (_, g) in zip(y, groups.iterrows(), strict=True):
        ax.fill_betweenx([yi - 0.4, yi + 0.4], 1 / (1 + g["margin"]), 1 + g["margin"], color="#dddddd", lw=0)
        low = g["ci_low"] if np.isfinite(g["ci_low"]) else g["geomean_ratio"]
        high = g["ci_high"] if np.isfinite(g["ci_high"]) else g["geomean_ratio"]
        ax.plot([low, high], [yi, yi], color="black", lw=2)
        ax.plot(g["geomean_ratio"], yi, "o", color="black")
    ax.axvline(1, color="black", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [f"[{g['domain']}] {g['task']}/{g['algorithm']} [{g['rust_framework']}]  n={g['comparisons']}: "
                      f"{g['faster']} faster, {g['equivalent']} equiv., {g['slower']} slower, "
                      f"{g['quality_mismatch']} mismatch" for _, g in groups.iterrows()], fontsize=8)
    ax.set_xlabel(f"{phase} time, Rust / Python: geometric mean over the algorithm's comparisons (95% bootstrap CI;"
                  " quality mismatches left out)")
    ax.set_title(f"{len(rows)} comparisons, one row per algorithm and Rust framework (too many to draw one by one;"
                 "\nevery comparison is in the table below); shaded: equivalence band ±m", fontsize=9)
    fig.tight_layout()
    return fig


def series_colour(name: str, index: int) -> str:
    return COLOURS["python"] if name in ("python", "scikit-learn") else RUST_SHADES[index % len(RUST_SHADES)]


def memory(memory_table: pd.DataFrame) -> Figure:
    """Median peak RSS per comparison and framework (light), and the workload's increment over the
    RSS at the start of the repetition (solid) where records carry it."""
    rows = memory_table.reset_index(drop=True)
    columns = [c for c in rows.columns if c.startswith("peak_rss_mb_")]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) * max(1, len(columns) / 2) + 1.5))
    y = np.arange(len(rows))
    width = 0.8 / max(1, len(columns))
    for i, column in enumerate(columns):
        name = column.removeprefix("peak_rss_mb_")
        at = y - 0.4 + width * (i + 0.5)
        ax.barh(at, rows[column], height=width, color=series_colour(name, i), alpha=0.35, label=f"{name} peak")
        if f"increment_mb_{name}" in rows:
            ax.barh(at, rows[f"increment_mb_{name}"], height=width, color=series_colour(name, i),
                    label=f"{name} increment")
    ax.set_yticks(y, list(labelled(rows.assign(rust_framework=""))), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MiB per repetition (median): process peak RSS (light), "
                  "increment over the repetition's start (solid)")
    ax.set_title("Peak memory")
    ax.legend()
    fig.tight_layout()
    return fig


def training_curves(table: pd.DataFrame) -> Figure | None:
    """Training tasks: the median training loss and test accuracy per epoch, per comparison and framework."""
    ok = table[(table["status"] == "ok") & table["series"].notna()] if "series" in table else table.iloc[0:0]
    if ok.empty:
        return None
    ok = ok.assign(label=labelled(ok.assign(rust_framework="")))
    labels = sorted(ok["label"].unique())
    fig, axes = plt.subplots(len(labels), 2, figsize=(10, 2.6 * len(labels)), squeeze=False)
    for row, name in zip(axes, labels, strict=True):
        group = ok[ok["label"] == name]
        for f_index, (framework, runs) in enumerate(sorted(group.groupby("framework"))):
            for ax, key in zip(row, ("train_loss", "test_accuracy"), strict=True):
                curves = np.array([s[key] for s in runs["series"] if s and s.get(key)], dtype=float)
                if curves.size:
                    epochs = np.arange(1, curves.shape[1] + 1)
                    ax.plot(epochs, np.median(curves, axis=0), "o-", color=series_colour(framework, f_index),
                            label=framework)
        row[0].set_ylabel("training loss")
        row[1].set_ylabel("test accuracy")
        row[0].set_title(name, fontsize=8, loc="left")
        for ax in row:
            ax.set_xlabel("epoch")
        row[1].legend(fontsize=7)
    fig.suptitle("Training curves (median over measured repetitions)")
    fig.tight_layout()
    return fig


def return_curves(table: pd.DataFrame, bins: int = 40, limit: int = 12) -> Figure | None:
    """Agent tasks: each side's episode returns against environment steps, the mean return of the
    episodes ending in each of `bins` step bins, then the median over seeds (one line per
    framework), for the first `limit` algorithm x environment x hyperparameter cells."""
    if "returns_file" not in table:
        return None
    ok = table[(table["status"] == "ok") & table["returns_file"].notna() & table["episode_ends_file"].notna()]
    if ok.empty:
        return None
    ok = ok.assign(label=labelled(ok.assign(rust_framework="")))
    labels = sorted(ok["label"].unique())[:limit]
    fig, axes = plt.subplots(len(labels), 1, figsize=(8, 2.6 * len(labels)), squeeze=False)
    for ax, name in zip(axes[:, 0], labels, strict=True):
        group = ok[ok["label"] == name].drop_duplicates(["framework", "repetition"])
        loaded = {row: (np.load(r), np.load(e)) for row, r, e in
                  zip(group.index, group["returns_file"], group["episode_ends_file"], strict=True)}
        last = max((float(ends.max()) for _, ends in loaded.values() if len(ends)), default=1.0)
        edges = np.linspace(0, last, bins + 1)  # the same step bins for every side and seed
        for f_index, (framework, runs) in enumerate(sorted(group.groupby("framework"))):
            curves = []
            for row in runs.index:
                returns, ends = loaded[row]
                which = np.clip(np.searchsorted(edges, ends, side="left") - 1, 0, bins - 1)
                sums, counts = np.bincount(which, returns, bins), np.bincount(which, minlength=bins)
                curves.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
            if curves:
                with warnings.catch_warnings():  # a bin where no seed ended an episode stays empty
                    warnings.simplefilter("ignore", RuntimeWarning)
                    values = np.nanmedian(np.array(curves), axis=0)
                ax.plot(edges[1:], values, "-", color=series_colour(framework, f_index),
                        label=f"{framework} ({len(curves)} seeds)")
        ax.set_title(name, fontsize=8, loc="left")
        ax.set_xlabel("environment step")
        ax.set_ylabel("episode return")
        ax.legend(fontsize=7)
    fig.suptitle("Return curves (mean return per step bin, median over seeds)")
    fig.tight_layout()
    return fig


def performance_profiles(table: pd.DataFrame, points: int = 200, resamples: int = 1000,
                         limit: int = 12) -> Figure | None:
    """Agent tasks: each side's performance profile (rliable's score distribution): the share of its
    seeds whose final return exceeds tau, against tau over the cell's range, with a 95% percentile
    bootstrap band over the seeds; one panel per algorithm x environment x hyperparameter cell, the
    first `limit`. A side whose curve lies above another's reached higher returns on more seeds."""
    from mlbench.stats import per_seed

    if "metric_final_return" not in table:
        return None
    ok = table[(table["status"] == "ok") & table["metric_final_return"].notna()]
    if ok.empty:
        return None
    ok = ok.assign(label=labelled(ok.assign(rust_framework="")))
    labels = sorted(ok["label"].unique())[:limit]
    fig, axes = plt.subplots(len(labels), 1, figsize=(8, 2.6 * len(labels)), squeeze=False)
    rng = np.random.default_rng(0)  # the bands' resamples: the same figure for the same run
    for ax, name in zip(axes[:, 0], labels, strict=True):
        group = ok[ok["label"] == name]
        sides = {framework: per_seed(runs, "final_return") for framework, runs in sorted(group.groupby("framework"))}
        everything = np.concatenate(list(sides.values()))
        taus = np.linspace(everything.min(), everything.max(), points)
        for f_index, (framework, scores) in enumerate(sides.items()):
            colour = series_colour(framework, f_index)
            share = (scores[:, None] > taus[None, :]).mean(axis=0)
            draws = scores[rng.integers(0, len(scores), size=(resamples, len(scores)))]
            shares = (draws[:, :, None] > taus[None, None, :]).mean(axis=1)
            low, high = np.percentile(shares, [2.5, 97.5], axis=0)
            ax.fill_between(taus, low, high, color=colour, alpha=0.15, linewidth=0)
            ax.step(taus, share, where="post", color=colour, label=f"{framework} ({len(scores)} seeds)")
        ax.set_title(name, fontsize=8, loc="left")
        ax.set_xlabel("final return (tau)")
        ax.set_ylabel("share of seeds > tau")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.suptitle("Performance profiles (share of seeds whose final return exceeds tau; 95% bootstrap band)")
    fig.tight_layout()
    return fig


def quality_vs_time(comparisons: pd.DataFrame, phase: str = "headline") -> Figure:
    """Per task: each comparison's median time against its quality, one marker per language."""
    rows = (comparisons[comparisons["phase"].isin(stats.HEADLINE_PHASES)] if phase == "headline"
            else comparisons[comparisons["phase"] == phase])
    tasks = sorted(rows["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        group = rows[rows["task"] == task]
        ax.scatter(group["median_python"], group["quality_python"], color=COLOURS["python"],
                   label="python", alpha=0.8, marker="o", s=50)
        for i, (framework, rust) in enumerate(group.groupby("rust_framework")):
            ax.scatter(rust["median_rust"], rust["quality_rust"], color=series_colour(framework, i),
                       label=f"rust: {framework}", alpha=0.8, marker="x", s=50)
        for _, r in group.iterrows():
            ax.plot([r["median_python"], r["median_rust"]], [r["quality_python"], r["quality_rust"]],
                    color="grey", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlabel(f"median {phase} time, s")
        ax.set_ylabel(" / ".join(sorted(group["quality_metric"].unique())))
        ax.set_title(task)
        ax.legend()
    fig.suptitle("Quality against time (a line joins the two sides of one comparison)")
    fig.tight_layout()
    return fig


def headline(frame: pd.DataFrame, prefix: str = "time_") -> str:
    """The main phase present (stats.HEADLINE_PHASES): train (training tasks), step (env_steps),
    generate (generation) or, failing those, fit (classical)."""
    for phase in (p for p in stats.HEADLINE_PHASES if p != "fit"):
        column = f"{prefix}{phase}"
        if column in frame and frame[column].notna().any():
            return phase
    return "fit"


def distributions(table: pd.DataFrame, task: str, phase: str = "headline") -> Figure:
    """Every measured repetition of one task, per comparison and framework (strip plot)."""
    ok = table[(table["status"] == "ok") & (table["task"] == task)].copy()
    phase = headline(ok) if phase == "headline" else phase
    ok["label"] = labelled(ok.assign(rust_framework=""))
    labels = sorted(ok["label"].unique())
    frameworks = sorted(ok["framework"].unique(), key=lambda f: (f != "scikit-learn", f))
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.5))
    rng = np.random.default_rng(0)
    step = 0.7 / max(1, len(frameworks))
    side = {f: "python" if lang == "python" else f for f, lang in zip(ok["framework"], ok["language"], strict=True)}
    for f_index, framework in enumerate(frameworks):
        offset = -0.35 + step * (f_index + 0.5)
        for i, name in enumerate(labels):
            values = ok[(ok["label"] == name) & (ok["framework"] == framework)][f"time_{phase}"].dropna()
            jitter = rng.uniform(-step / 3, step / 3, len(values))
            ax.scatter(values, i + offset + jitter, s=14, color=series_colour(side[framework], f_index),
                       label=framework if i == 0 else None)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{phase} time per repetition, s (warm-ups excluded)")
    ax.set_title(f"{task}: distribution of repetitions")
    ax.legend()
    fig.tight_layout()
    return fig


def coverage_heatmap(coverage: pd.DataFrame) -> Figure:
    """Framework x task: the share of the task's algorithms each framework runs (blank: not its task)."""
    fig, ax = plt.subplots(figsize=(1.1 * len(coverage.columns) + 2.5, 0.45 * len(coverage) + 1.2))
    values = coverage.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(coverage.columns)), coverage.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(coverage)), coverage.index)
    fig.colorbar(image, ax=ax, label="share of the task's algorithms run")
    ax.set_title("Coverage: framework x task")
    fig.tight_layout()
    return fig


def size_sweep(sweep: pd.DataFrame) -> Figure:
    """Median headline time against training rows, log-log, one line per framework and setting; the
    legend gives each series' fitted slope with its 95% CI."""
    groups = list(sweep.groupby(["pool", "task", "algorithm", "label"], sort=True))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4), squeeze=False)
    for ax, ((pool, task, algorithm, label), panel) in zip(axes[0], groups, strict=True):
        for i, (framework, series) in enumerate(panel.groupby("framework", sort=True)):
            first = series.iloc[0]
            colour = COLOURS["python"] if first["language"] == "python" else series_colour(framework, i)
            slope = ("" if np.isnan(first["slope"]) else
                     f": slope {first['slope']:.2f} [{first['slope_ci_low']:.2f}, {first['slope_ci_high']:.2f}]")
            ax.plot(series["n_train"], series["median_s"], "o-", color=colour, label=f"{framework}{slope}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training rows")
        ax.set_ylabel(f"median {panel['phase'].iloc[0]} s")
        ax.set_title(f"{task}/{algorithm} {label if label != '-' else ''}\n{pool}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def generation_throughput(llm: pd.DataFrame) -> Figure | None:
    """Generation tasks (stats.language_models): decode tokens/s and one decode step's p50 latency
    against the batch size, one line per framework and number of new tokens, per model set."""
    if llm.empty or llm["batch"].isna().all():
        return None
    sets = sorted(llm["dataset"].unique())
    fig, axes = plt.subplots(len(sets), 2, figsize=(10, 3 * len(sets)), squeeze=False)
    for row, dataset in zip(axes, sets, strict=True):
        group = llm[llm["dataset"] == dataset]
        for f_index, ((language, framework, new), runs) in enumerate(
                sorted(group.groupby(["language", "framework", "new tokens"]))):
            runs = runs.sort_values("batch")
            style = "o-" if language == "python" else "s--"
            colour = series_colour("python" if language == "python" else framework, f_index)
            for ax, column in zip(row, ("decode tokens/s", "decode p50 ms"), strict=True):
                ax.plot(runs["batch"], runs[column], style, color=colour, alpha=0.5 + 0.5 / (1 + f_index % 3),
                        label=f"{framework}, {new} new")
        row[0].set_ylabel("decode tokens/s")
        row[1].set_ylabel("decode step p50 (ms)")
        row[0].set_title(dataset, fontsize=8, loc="left")
        for ax in row:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("batch size")
        row[1].legend(fontsize=7)
    fig.suptitle("Generation: decode throughput and step latency by batch size (median over repetitions)")
    fig.tight_layout()
    return fig
