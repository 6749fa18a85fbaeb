"""Duan et al. 2016's table: the metric, the significance marks, and the JSON / Markdown / PNG outputs.

The metric (section 5, "Performance metrics"): for each seed, the average undiscounted return over all
trajectories of all training iterations, ``sum_i sum_n R_in / sum_i N_i``; a cell is its mean and
standard deviation over seeds. Bold: the best mean of the row and every algorithm whose seeds are not
significantly worse than the best's by Welch's t-test (p >= 0.05; the paper's rule).
"""
import math
import warnings

import numpy as np


def average_return(return_sums, counts) -> np.ndarray:
    """Per seed: all episodes' returns over all iterations, averaged (``[seeds, iterations]`` inputs)."""
    return_sums, counts = np.asarray(return_sums, np.float64), np.asarray(counts, np.float64)
    total = counts.sum(axis=-1)
    return np.where(total > 0, return_sums.sum(axis=-1) / np.maximum(total, 1), np.nan)


def iteration_returns(return_sums, counts) -> np.ndarray:
    """Per seed and iteration: the mean return of the episodes that ended in it (NaN where none did)."""
    return_sums, counts = np.asarray(return_sums, np.float64), np.asarray(counts, np.float64)
    return np.where(counts > 0, return_sums / np.maximum(counts, 1), np.nan)


def iteration_average(return_sums, counts) -> np.ndarray:
    """Per seed: the mean over iterations of each iteration's average return (the mean of rllab's logged
    ``AverageReturn`` column). Unlike ``average_return`` it does not weight the early iterations, whose
    many short failed episodes dominate a per-trajectory average on tasks with early termination."""
    return nanmean(iteration_returns(return_sums, counts), axis=-1)


def nanmean(x, axis: int) -> np.ndarray:
    """``np.nanmean`` without the warning for all-NaN slices (iterations where no episode ended stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(x, np.float64), axis=axis)


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); 1.0 when either side has < 2 seeds."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        return 1.0
    if np.std(a) == 0 and np.std(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def bold_set(cells: dict, alpha: float = 0.05) -> set:
    """The algorithms of one row that are bold: the best mean and those not significantly worse."""
    scored = {k: v for k, v in cells.items() if v and np.isfinite(np.mean(v))}
    if not scored:
        return set()
    best = max(scored, key=lambda k: np.mean(scored[k]))
    return {k for k, v in scored.items() if k == best or welch_p(scored[best], v) >= alpha}


def summarise(results: list, tasks: list, algos: list, paper: dict, metric: str = "average_return_per_seed") -> dict:
    """``{task: {algo: {mean, std, seeds, per_seed, paper, bold}}}`` from trial results (``metric``: the
    per-seed key, ``average_return_per_seed`` (the paper's formula) or ``iteration_average_per_seed``)."""
    by = {(r["trial"]["task"], r["trial"]["algo"]): r for r in results}
    table = {}
    for task in tasks:
        row = {}
        for algo in algos:
            r = by.get((task, algo))
            per_seed = [float(x) for x in r[metric]] if r and metric in r else []
            row[algo] = dict(per_seed=per_seed, seeds=len(per_seed),
                             mean=float(np.mean(per_seed)) if per_seed else None,
                             std=float(np.std(per_seed)) if per_seed else None,
                             iterations=r["iterations"] if r else None,
                             paper=paper.get(task, {}).get(algo))
        bold = bold_set({a: c["per_seed"] for a, c in row.items()})
        for a, c in row.items():
            c["bold"] = a in bold
        table[task] = row
    return table


def _fmt(mean, std) -> str:
    if mean is None or not math.isfinite(mean):
        return "—"
    return f"{mean:.1f} ± {std:.1f}"


def markdown(table: dict, algos: list) -> str:
    """One row per task (ours), with the paper's cells on a second row where any is known."""
    lines = ["| task | " + " | ".join(algos) + " |", "|---|" + "---|" * len(algos)]
    for task, row in table.items():
        cells = []
        for a in algos:
            c = row[a]
            s = _fmt(c["mean"], c["std"])
            cells.append(f"**{s}**" if c["bold"] and c["mean"] is not None else s)
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
        paper = [row[a]["paper"] for a in algos]
        if any(p is not None for p in paper):
            fmt = lambda p: "" if p is None else (f"{p[0]:.1f} ± {p[1]:.1f}" if isinstance(p, (list, tuple)) else f"{p:.1f}")
            lines.append(f"| *paper* | " + " | ".join(fmt(p) for p in paper) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(results: list, tasks: list, algos: list, path) -> None:
    """Learning curves: per task, each algorithm's mean over seeds of the per-iteration average return."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, max(1, len(tasks)))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    by = {(r["trial"]["task"], r["trial"]["algo"]): r for r in results}
    for ax, task in zip(axes.flat, tasks):
        for algo in algos:
            r = by.get((task, algo))
            if r is None:
                continue
            c = np.asarray(r["iteration_returns"], np.float64)  # [seeds, iterations]
            mean = nanmean(c, axis=0)
            ax.plot(np.arange(1, len(mean) + 1), mean, label=algo)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("average return")
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
