"""Learning curves: mean and spread (min-max and +-1 std) over seeds, one line per run."""
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


def plot_runs(run_dirs, out: Path, title: str | None = None) -> Path:
    """Plot the episode-return curves of ``run_dirs`` into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from surrogate.run import read_config, read_metrics_csv

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        saved = read_config(run_dir)
        m = read_metrics_csv(run_dir / "metrics.csv")
        ret = _smooth(m["episode_return"], max(1, m["episode_return"].shape[1] // 50))
        x = m["env_steps"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std, lo, hi = np.nanmean(ret, 0), np.nanstd(ret, 0), np.nanmin(ret, 0), np.nanmax(ret, 0)
        label = f"{run_dir.name}: {saved['algo']} on {saved['config']['env']} ({ret.shape[0]} seeds)"
        line, = ax.plot(x, mean, label=label)
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
