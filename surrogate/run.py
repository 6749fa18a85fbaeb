"""Run directories: ``runs/<name>/`` with ``config.json``, ``metrics.csv``, TensorBoard events,
``checkpoints/latest.msgpack``, ``eval.json`` and ``curve.png``.

``train_in_dir`` is what ``surrogate train`` calls; every file is written atomically, and an
existing run is never overwritten unless asked.
"""
import csv
import dataclasses
import io
import json
import os
import platform
import shutil
import sys
import time
import typing
from pathlib import Path

import jax
import numpy as np

from surrogate import algos, checkpoint
from surrogate.runtime import TrainResult
from surrogate.errors import ConfigError, RunDirError

CONFIG = "config.json"
METRICS = "metrics.csv"
CKPT = Path("checkpoints") / "latest.msgpack"
EVAL = "eval.json"
CURVE = "curve.png"


def episode_curve(history: dict) -> np.ndarray:
    """Mean undiscounted return of the episodes finished in each update, ``[seeds, updates]`` (NaN if none)."""
    count = history["episode_count"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, history["episode_return_sum"] / count, np.nan)


def default_checkpoint_every(num_updates: int) -> int:
    """About 20 checkpoints per run; a divisor of ``num_updates`` when one is close, to compile once."""
    target = -(-num_updates // 20)
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if num_updates % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


def write_json(path: Path, obj) -> None:
    checkpoint.atomic_write(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def read_config(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    if not run_dir.is_dir():
        raise RunDirError(f"Run directory {run_dir} does not exist. Check the path (runs are under runs/<name>/).")
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: it has no {CONFIG}. Point to a folder made by "
                          f"`surrogate train`.")
    try:
        saved = json.loads(path.read_text())
        saved["algo"], saved["config"], saved["seeds"]
    except Exception as e:
        raise RunDirError(f"{path} is corrupt ({e}). Restore it, or start a new run.") from None
    for key in ("seeds", "seed", "checkpoint_every"):
        if key in saved and not _check_type(saved[key], int)[0]:
            raise RunDirError(f"{path}: {key} is {saved[key]!r}, expected an integer. Fix it in {path}, or start "
                              f"a new run.")
    return saved


def config_from_saved(saved: dict, path=CONFIG):
    """``(Algorithm, Config)`` from a parsed ``config.json``. An unknown field or a value of the wrong type raises
    ``RunDirError``, values that fail ``validate`` a ``ConfigError``; both name ``path``."""
    algorithm = algos.get(saved["algo"])
    if not isinstance(saved["config"], dict):
        raise RunDirError(f"{path} is corrupt (its \"config\" is not an object). Restore it, or start a new run.")
    fields = {f.name: f for f in dataclasses.fields(algorithm.Config)}
    unknown = set(saved["config"]) - set(fields)
    if unknown:
        raise RunDirError(f"{path} has unknown fields {sorted(unknown)} for {saved['algo']}; it was written by "
                          f"another version. Remove them from {path}, or start a new run.")
    types = typing.get_type_hints(algorithm.Config)
    values = {}
    for name, value in saved["config"].items():
        ok, value, expected = _check_type(value, types[name])
        if not ok:
            raise RunDirError(f"{path}: {name} is {value!r}, expected {expected}. Fix it in {path} (the default "
                              f"is {fields[name].default!r}), or start a new run.")
        values[name] = value
    try:
        return algorithm, algorithm.Config(**values).validate()
    except ConfigError as e:
        raise ConfigError(f"{path} holds an invalid configuration: {e} Fix it in {path}, or start a new run.") from None


def _check_type(value, annotation):
    """``(ok, value, expected)``: whether a JSON ``value`` fits a ``Config`` field's ``annotation``,
    the value as the field's type (a list as a tuple, an int as a float) and the type in words."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if annotation is bool:
        return isinstance(value, bool), value, "true or false"
    if annotation is int:
        return is_int, value, "an integer"
    if annotation is float:
        return is_int or isinstance(value, float), float(value) if is_int else value, "a number"
    if annotation is str:
        return isinstance(value, str), value, "a string"
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        return value in choices, value, "one of " + ", ".join(map(repr, choices))
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (int, ...):
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return ok, tuple(value) if ok else value, "a list of integers"
    return True, value, str(annotation)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info() -> dict:
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "jax_devices": [str(d) for d in jax.devices()]}


class DirLogger:
    """Called after each chunk of updates: checkpoint, metrics.csv, TensorBoard, progress."""

    def __init__(self, run_dir: Path, num_updates: int, seeds: int, progress: bool, first_update: int = 0):
        from tensorboardX import SummaryWriter

        self.run_dir, self.num_updates, self.seeds = run_dir, num_updates, seeds
        # one events file per start: tensorboardX names it by the second and opens it "wb", so a resume in the
        # same second as the start would otherwise overwrite the first file's events
        self.tb = SummaryWriter(str(run_dir / "tb"), filename_suffix=f".from{first_update}")
        self.written = first_update  # updates already sent to TensorBoard
        self.t0, self.u0 = time.perf_counter(), first_update
        self.progress = None
        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total} updates"),
                                     TextColumn("{task.fields[sps]} steps/s"), TextColumn("return {task.fields[ret]}"),
                                     TimeRemainingColumn())
            self.progress.start()
            self.task = self.progress.add_task("train", total=num_updates, completed=first_update, sps="-", ret="-")

    def __call__(self, result, updates_done: int):
        checkpoint.save(self.run_dir / CKPT, result.state, result.history, updates_done)
        write_metrics_csv(self.run_dir / METRICS, result.history, result.steps_per_update)
        curve = episode_curve(result.history)
        for u in range(self.written, updates_done):
            step = (u + 1) * result.steps_per_update
            for s in range(self.seeds):
                for k, v in result.history.items():
                    if k.endswith("_sum") or k == "episode_count":
                        continue
                    self.tb.add_scalar(f"seed{s}/{k}", float(v[s, u]), step)
                if np.isfinite(curve[s, u]):
                    self.tb.add_scalar(f"seed{s}/episode_return", float(curve[s, u]), step)
        self.tb.flush()
        self.written = updates_done
        if self.progress:
            sps = (updates_done - self.u0) * result.steps_per_update * self.seeds / (time.perf_counter() - self.t0)
            recent = curve[:, max(0, updates_done - 5):updates_done]
            ret = np.nanmean(recent) if np.isfinite(recent).any() else float("nan")
            self.progress.update(self.task, completed=updates_done, sps=f"{sps:,.0f}", ret=f"{ret:.1f}")

    def close(self):
        self.tb.close()
        if self.progress:
            self.progress.stop()


def write_metrics_csv(path: Path, history: dict, steps_per_update: int) -> None:
    curve = episode_curve(history)
    seeds, updates = curve.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        length = np.where(history["episode_count"] > 0, history["episode_length_sum"] / history["episode_count"], np.nan)
    losses = [k for k in history if not k.startswith("episode_")]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["seed", "update", "env_steps", "episode_return", "episode_length", *losses])
    for s in range(seeds):
        for u in range(updates):
            row = [s, u + 1, (u + 1) * steps_per_update, _fmt(curve[s, u]), _fmt(length[s, u])]
            w.writerow(row + [_fmt(history[k][s, u]) for k in losses])
    checkpoint.atomic_write(path, buf.getvalue().encode())


def _fmt(x) -> str:
    return "" if not np.isfinite(x) else f"{float(x):.6g}"


def read_metrics_csv(path: Path) -> dict:
    """``{"env_steps": [updates], "episode_return": [seeds, updates]}`` from a metrics.csv."""
    if not Path(path).is_file():
        raise RunDirError(f"{path} is missing: the run has not finished an update yet.")
    rows = list(csv.DictReader(Path(path).open()))
    if not rows:
        raise RunDirError(f"{path} has no rows yet.")
    seeds = sorted({int(r["seed"]) for r in rows})
    steps = sorted({int(r["env_steps"]) for r in rows})
    ret = np.full((len(seeds), len(steps)), np.nan)
    col = {s: i for i, s in enumerate(steps)}
    for r in rows:
        if r["episode_return"]:
            ret[int(r["seed"]), col[int(r["env_steps"])]] = float(r["episode_return"])
    return {"env_steps": np.asarray(steps), "episode_return": ret}


def prepare_dir(run_dir: Path, algo: str, config, seeds: int, seed: int, checkpoint_every: int, overwrite: bool) -> None:
    """Create a fresh run directory (refusing to clobber an existing run unless ``overwrite``)."""
    if (run_dir / CONFIG).exists() and not overwrite:
        raise RunDirError(f"{run_dir} already holds a run. Continue it with `--resume {run_dir}`, pick another "
                          f"--name, or pass --overwrite to replace it.")
    if run_dir.exists() and overwrite:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG, {
        "algo": algo, "seeds": seeds, "seed": seed, "checkpoint_every": checkpoint_every,
        "config": dataclasses.asdict(config), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "surrogate_version": _version(), "jax_version": jax.__version__,
    })


def _version():
    from surrogate import __version__

    return __version__


def saved_run(run_dir: Path, algo: str | None) -> dict:
    """The saved ``config.json`` of a run to continue, checked against the algorithm asked for (if any)."""
    saved = read_config(run_dir)
    if algo is not None and algo != saved["algo"]:
        raise RunDirError(f"{run_dir} was trained with {saved['algo']}, not {algo}; resume it with "
                          f"`surrogate train {saved['algo']} --resume {run_dir}`.")
    return saved


def train_in_dir(run_dir, algo: str | None = None, config=None, seeds: int = 1, *, resume: bool = False,
                 checkpoint_every: int | None = None, overwrite: bool = False, eval_episodes: int = 20,
                 progress: bool = False, seed: int = 0, stop_after: int | None = None):
    """Train into ``run_dir`` (or continue it with ``resume=True``), then evaluate and plot.

    With ``resume``, ``algo`` (if given) must be the run's algorithm. ``stop_after`` stops after that many
    updates without evaluating, as an interruption would.
    Returns the ``TrainResult``.
    """
    from surrogate import envs

    run_dir = Path(run_dir)
    if resume:
        saved = saved_run(run_dir, algo)
        algorithm, config = config_from_saved(saved, run_dir / CONFIG)
        algo, seeds, checkpoint_every, seed = saved["algo"], saved["seeds"], saved["checkpoint_every"], saved.get("seed", 0)
    else:
        algorithm = algos.get(algo)
        if config is None:
            config = algorithm.Config()
        config.validate()
        if seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {seeds}.")
        checkpoint_every = checkpoint_every or default_checkpoint_every(algorithm.num_iterations(config))
        if checkpoint_every < 1:
            raise ConfigError(f"--checkpoint-every must be >= 1 update, got {checkpoint_every}.")
    env = envs.make(config.env)
    key = jax.random.PRNGKey(seed)
    iterations, steps = algorithm.num_iterations(config), algorithm.steps_per_iteration(config, env)
    previous = None
    if resume:
        template = algorithm.state_template(config, env, key, seeds)
        state, history, done = checkpoint.load(run_dir / CKPT, template)
        previous = TrainResult(state, history, steps)
    else:
        created = not run_dir.exists()
        prepare_dir(run_dir, algo, config, seeds, seed, checkpoint_every, overwrite)
        done = 0
        total = getattr(config, "total_steps", None)
        if total is not None and total != iterations * steps:
            batch = (f"{config.num_envs} x {config.num_steps} = " if hasattr(config, "num_steps") else "") + f"{steps}"
            print(f"note: total_steps {total} is not a multiple of the batch ({batch} steps); training runs "
                  f"{iterations} updates = {iterations * steps} steps.", file=sys.stderr)
    logger = DirLogger(run_dir, iterations, seeds, progress, first_update=done)
    discard = False  # a ConfigError found at initialisation (e.g. a buffer too big): leave no half-made run behind
    try:
        until = None if stop_after is None else done + stop_after
        result = algorithm.train(config, env, key, seeds=seeds, logger=logger, resume=previous,
                                 chunk_updates=checkpoint_every, until=until)
    except ConfigError:
        discard = not resume and created and not (run_dir / CKPT).is_file()
        raise
    finally:
        logger.close()
        if discard:
            shutil.rmtree(run_dir, ignore_errors=True)
    if stop_after is None:
        finish(run_dir, algorithm, config, env, result, seeds, eval_episodes)
    return result


def finish(run_dir: Path, algorithm, config, env, result, seeds: int, episodes: int) -> dict:
    """Final deterministic evaluation of every seed (eval.json) and the learning curve (curve.png)."""
    report = evaluate_seeds(algorithm, config, env, result, seeds, episodes)
    write_json(run_dir / EVAL, report)
    plot_runs([run_dir], run_dir / CURVE)
    return report


def evaluate_seeds(algorithm, config, env, result, seeds: int, episodes: int) -> dict:
    per_seed = []
    for i in range(seeds):
        params, stats = algorithm.seed_policy(config, result, i)
        returns = algorithm.evaluate(config, env, params, stats, jax.random.PRNGKey(10_000 + i), episodes)
        per_seed.append(float(np.mean(returns)))
    return {"episodes_per_seed": episodes, "mean_return_per_seed": per_seed,
            "mean_return": float(np.mean(per_seed)), "std_over_seeds": float(np.std(per_seed))}


def load_result(run_dir: Path):
    """``(algorithm, config, env, result, seeds)`` of a run directory from its latest checkpoint."""
    from surrogate import envs

    saved = read_config(run_dir)
    algorithm, config = config_from_saved(saved, Path(run_dir) / CONFIG)
    env = envs.make(config.env)
    template = algorithm.state_template(config, env, jax.random.PRNGKey(0), saved["seeds"])
    state, history, _ = checkpoint.load(Path(run_dir) / CKPT, template)
    steps = algorithm.steps_per_iteration(config, env)
    return algorithm, config, env, TrainResult(state, history, steps), saved["seeds"]


def plot_runs(run_dirs, out: Path, title: str | None = None) -> Path:
    """Plot the episode-return curves of ``run_dirs`` into ``out`` (PNG)."""
    from surrogate.plot import plot_curves

    curves = []
    for run_dir in map(Path, run_dirs):
        saved, m = read_config(run_dir), read_metrics_csv(run_dir / METRICS)
        curves.append((f"{run_dir.name}: {saved['algo']} on {saved['config']['env']}", m["env_steps"],
                       m["episode_return"]))
    return plot_curves(curves, out, title)
