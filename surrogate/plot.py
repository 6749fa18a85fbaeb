"""Learning curves: mean and spread (min-max and +-1 std) over seeds, one line per run. Knows no run
directory: ``run.plot_runs`` reads the runs and calls ``plot_curves``."""
import warnings
from pathlib import Path

import numpy as np


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average that ignores NaN (updates in which no episode ended)."""
    out = np.full_like(y, np.nan)
    for i in range(y.shape[-1]):
        chunk = y[..., max(0, i - window + 1): i + 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
            out[..., i] = np.nanmean(chunk, axis=-1)
    return out


def plot_curves(curves, out: Path, title: str | None = None) -> Path:
    """Plot learning curves into ``out`` (PNG, written atomically). ``curves``: ``(label, env_steps [T],
    episode returns [seeds, T])`` triples; each is smoothed and drawn as its mean over seeds with bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, x, returns in curves:
        ret = _smooth(returns, max(1, returns.shape[1] // 50))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std, lo, hi = np.nanmean(ret, 0), np.nanstd(ret, 0), np.nanmin(ret, 0), np.nanmax(ret, 0)
        line, = ax.plot(x, mean, label=f"{label} ({ret.shape[0]} seeds)")
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.12, lw=0)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.25, lw=0)
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("episode return (training episodes)")
    ax.set_title(title or "mean over seeds; bands: +-1 std and min-max")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
