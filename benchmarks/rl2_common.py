"""What benchmarks/rl2_bandits.py and benchmarks/rl2_mdps.py share: train RL² on one cell of the paper's
table (seeds vmapped), evaluate every seed on the same task draws as the baselines (``--instances``, 10,000;
``--reevaluate``: the saved policies again, no training), write one result
file per cell (an interrupted run loses only the cell in flight), then the summary and a Markdown table.

Duan et al. 2016 (arXiv 1611.02779), Tables 1-2: each cell is the total reward over a trial of n episodes,
averaged over 1000 task instances. Our RL² figure per cell is the mean over seeds of each seed's mean over
the draws (its standard error over seeds beside it); the baselines are computed on the same draws.
"""
import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import RESULTS, write_result

INSTANCES = 10_000  # the paper: 1000 (its cells' standard error is then ~1% of a n = 10 bandit total)


def train_cell(cfg, seeds: int, log, chunk: int = 20, checkpoint_path: Path | None = None):
    """Train ``seeds`` seeds of RL² with ``cfg`` (one compiled program per chunk of updates); returns the
    result, the wall time and the learning curve (mean trial total per update, per seed). With
    ``checkpoint_path`` the whole training state is saved there after each chunk and a run that finds it
    continues from it (the same trajectory); it is removed once training ends. Its name carries a digest
    of the config and the seeds, so a changed cell starts afresh."""
    import jax

    from surrogate import checkpoint, envs
    from surrogate.algos import rl2
    from surrogate.runtime.train import TrainResult

    env = envs.make(cfg.env)
    updates = rl2.ALGO.num_iterations(cfg)
    key = jax.random.PRNGKey(cfg.arms * 1000 + cfg.episodes)
    previous, t0, spent = None, time.time(), 0.0
    if checkpoint_path is not None and checkpoint_path.is_file():
        state, history, done = checkpoint.load(checkpoint_path, rl2.ALGO.state_template(cfg, env, key, seeds))
        previous = TrainResult(state, history, rl2.ALGO.steps_per_iteration(cfg, env))
        clock = checkpoint_path.with_suffix(".json")  # training seconds before this process
        spent = json.loads(clock.read_text())["train_s"] if clock.is_file() else float("nan")
        log(f"  {cfg.env}: resumed at update {done}/{updates} from {checkpoint_path}")

    def logger(result, done):
        h = result.history
        ret = h["episode_return_sum"][:, -1] / np.maximum(h["episode_count"][:, -1], 1)
        log(f"  {cfg.env}: update {done}/{updates}, {time.time() - t0:.0f} s, trial totals "
            + " ".join(f"{r:.2f}" for r in ret))
        if checkpoint_path is not None:
            checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.save(checkpoint_path, result.state, result.history, done)
            checkpoint_path.with_suffix(".json").write_text(json.dumps({"train_s": time.time() - t0 + spent}))

    result = rl2.ALGO.train(cfg, env, key, seeds=seeds, resume=previous, logger=logger, chunk_updates=chunk)
    jax.block_until_ready(result.state)
    h = result.history
    curve = h["episode_return_sum"] / np.maximum(h["episode_count"], 1)
    return env, result, time.time() - t0 + spent, curve


def training_checkpoint(name: str, cell: str, cfg, seeds: int) -> Path:
    """Where ``train_cell`` keeps a cell's training state: ``runs/rl2_bench/<name>/<cell>-<digest>.train.msgpack``."""
    import dataclasses
    import hashlib

    digest = hashlib.sha256(json.dumps([dataclasses.asdict(cfg), seeds], sort_keys=True).encode()).hexdigest()[:10]
    return Path("runs/rl2_bench") / name / f"{cell}-{digest}.train.msgpack"


def evaluate_cell(cfg, env, policies, task, deterministic: bool = False):
    """Each seed's trial totals on ``task`` (the baselines' draws), sampling the policy as the paper does
    (``deterministic``: its mode); ``policies``: per seed ``(params, obs_stats)``."""
    import jax

    from surrogate.algos import rl2

    return np.stack([rl2.evaluate_tasks(cfg, env, params, stats, task, jax.random.PRNGKey(30_000 + i), deterministic)
                     for i, (params, stats) in enumerate(policies)])


def seed_policies(cfg, result, seeds: int) -> list:
    from surrogate.algos import rl2

    return [rl2.ALGO.seed_policy(cfg, result, i) for i in range(seeds)]


def load_policies(name: str, cell: str, cfg, env, seeds: int) -> list:
    """The policies ``save_policies`` wrote for ``cell`` (restored into the structure a fresh run has)."""
    import flax.serialization
    import jax

    from surrogate.algos import rl2
    from surrogate.runtime.train import TrainResult

    template = rl2.ALGO.state_template(cfg, env, jax.random.PRNGKey(0), seeds)
    like = {str(i): p for i, p in enumerate(seed_policies(cfg, TrainResult(template, None, 0), seeds))}
    saved = flax.serialization.msgpack_restore(policy_path(name, cell).read_bytes())
    restored = flax.serialization.from_state_dict(like, saved)
    return [restored[str(i)] for i in range(seeds)]


def policy_path(name: str, cell: str) -> Path:
    return Path("runs/rl2_bench") / name / f"{cell}.msgpack"


def save_policies(name: str, cell: str, cfg, result, seeds: int) -> Path:
    """Every seed's final policy (parameters, observation statistics) as msgpack (no pickle), so a cell can be
    re-evaluated: ``runs/rl2_bench/<name>/<cell>.msgpack``."""
    import flax.serialization
    import jax

    from surrogate.checkpoint import atomic_write

    path = policy_path(name, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    policies = {str(i): jax.device_get(p) for i, p in enumerate(seed_policies(cfg, result, seeds))}
    atomic_write(path, flax.serialization.msgpack_serialize(flax.serialization.to_state_dict(policies)))
    return path


def training_figures(cfg, train_s: float, curve) -> dict:
    """The training part of a cell's figures: wall time, env steps, the learning curve (<= ~50 points per seed)."""
    stride = max(1, curve.shape[1] // 50)
    return dict(train_s=round(train_s, 1), env_steps_per_seed=int(curve.shape[1] * cfg.batch_size),
                learning_curve_every=stride, learning_curve=np.round(curve[:, ::stride], 3).tolist())


def cell_figures(cfg, seeds, training: dict, totals, baselines, paper_row, extra=None, mode_totals=None):
    per_seed = totals.mean(axis=1)
    extra = dict(extra or {})
    if mode_totals is not None:
        extra.update(rl2_mode_mean=float(mode_totals.mean()), rl2_mode_per_seed=mode_totals.mean(axis=1).tolist())
    return dict(
        setting=cfg.env, episodes=cfg.episodes, arms=cfg.arms if cfg.task == "bandit" else None,
        instances=int(totals.shape[1]), seeds=seeds, rl2_mean=float(per_seed.mean()),
        rl2_std_err_over_seeds=float(per_seed.std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else None,
        rl2_per_seed=per_seed.tolist(), rl2_best_seed=float(per_seed.max()),
        rl2_instance_std_err=float(totals.mean(0).std(ddof=1) / np.sqrt(totals.shape[1])),
        baselines={k: dict(mean=float(v[0]), std_err=float(v[1]), hp=v[2]) for k, v in baselines.items()},
        paper=paper_row, paper_rl2=paper_row["RL2"], vs_paper_rl2=float(per_seed.mean() / paper_row["RL2"] - 1),
        **training, config={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}, **extra)


def summarize(name: str, cells: dict, columns: list, label) -> str:
    """``results/<name>.json`` from the per-cell files present, and the Markdown table (ours beside the paper)."""
    folder = RESULTS / name
    found = {c: json.loads((folder / f"{c}.json").read_text()) for c in cells if (folder / f"{c}.json").is_file()}
    rows = [f"| setup | {' | '.join(columns)} | RL² ours (seeds) | RL² paper | ours/paper |",
            "|---" * (len(columns) + 4) + "|"]
    for c, paper in cells.items():
        if c not in found:
            rows.append(f"| {label(c)} | " + " | ".join(f"— ({paper.get(k, '—')})" for k in columns)
                        + f" | not run | {paper['RL2']} | |")
            continue
        r = found[c]
        f = (lambda x: f"{x:.2f}") if paper["RL2"] < 20 else (lambda x: f"{x:.1f}")  # n = 10 bandits: 2 decimals
        cell = lambda k: f"{f(r['baselines'][k.lower()]['mean'])}" if k.lower() in r["baselines"] else "—"
        base = " | ".join(f"{cell(k)} ({paper.get(k, '—')})" for k in columns)
        err = f" ± {f(r['rl2_std_err_over_seeds'])}" if r["rl2_std_err_over_seeds"] is not None else ""
        rows.append(f"| {label(c)} | {base} | {f(r['rl2_mean'])}{err} ({r['seeds']}) | {paper['RL2']} | "
                    f"{r['rl2_mean'] / paper['RL2']:.3f} |")
    table = "\n".join(rows)
    write_result(RESULTS / f"{name}.json", dict(
        cells={c: {k: r[k] for k in ("rl2_mean", "rl2_std_err_over_seeds", "rl2_per_seed", "seeds", "instances",
                                     "paper_rl2", "vs_paper_rl2", "train_s", "env_steps_per_seed")}
               | {"baselines": {k: v["mean"] for k, v in r["baselines"].items()}} for c, r in found.items()},
        missing=[c for c in cells if c not in found], markdown=table,
        note="each cell: baseline (paper) columns; RL² = mean over seeds of the mean trial total on the same "
             "draws as the baselines (`instances` per cell), ± standard error over seeds"))
    return table


def trained_policies(name, cell, cfg, args, previous: dict | None):
    """``(env, policies, training figures)``: RL² trained on the cell now, or (``previous``: the cell's result
    file, ``--reevaluate``) its saved policies and the training figures recorded with them."""
    from surrogate import envs

    if previous is not None:
        training = {k: previous[k] for k in ("train_s", "env_steps_per_seed", "learning_curve_every", "learning_curve")}
        env = envs.make(cfg.env)
        return env, load_policies(name, cell, cfg, env, previous["seeds"]), training
    ckpt = training_checkpoint(name, cell, cfg, args.seeds)
    env, result, train_s, curve = train_cell(cfg, args.seeds, log, checkpoint_path=ckpt)
    log(f"{cell}: policies saved to {save_policies(name, cell, cfg, result, args.seeds)}")
    ckpt.unlink(missing_ok=True)
    ckpt.with_suffix(".json").unlink(missing_ok=True)
    return env, seed_policies(cfg, result, args.seeds), training_figures(cfg, train_s, curve)


def run_cells(name, cells, make_config, compute, args, log=print):
    """Train and evaluate each cell in ``args.cells`` not yet written (``--skip-done``); ``--reevaluate``:
    evaluate the saved policies of the cells already written again (e.g. on more instances), no training."""
    folder = RESULTS / name
    folder.mkdir(parents=True, exist_ok=True)
    for c in args.cells:
        path = folder / f"{c}.json"
        previous = None
        if args.reevaluate:
            if not (path.is_file() and policy_path(name, c).is_file()):
                log(f"{c}: nothing to re-evaluate (no {path} or {policy_path(name, c)})")
                continue
            previous = json.loads(path.read_text())
            cfg = replace(make_config(c, args), **{k: v for k, v in previous["config"].items()
                                                   if k in ("total_steps", "num_envs", "num_steps")})
            args.seeds = previous["seeds"]
        elif args.skip_done and path.is_file():
            log(f"{c}: done already ({path})")
            continue
        else:
            cfg = make_config(c, args)
        log(f"{c}: {cfg.env}, {args.seeds} seeds, {cfg.total_steps} steps per seed "
            f"({cfg.num_envs} trials x {cfg.num_steps} steps per update)")
        figures = compute(c, cfg, args, previous)
        write_result(path, figures)
        log(f"{c}: RL² {figures['rl2_mean']:.2f} (paper {figures['paper_rl2']}), seeds {figures['rl2_per_seed']}, "
            f"{figures['train_s']:.0f} s -> {path}")


def with_budget(cfg, trials: int):
    """``cfg`` training on ``trials`` trials per seed (rounded to whole updates)."""
    updates = max(1, trials // cfg.num_envs)
    return replace(cfg, total_steps=updates * cfg.num_envs * cfg.num_steps)


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def main(doc: str, name: str, cells: dict, columns: list, make_config, compute, label, argv=None):
    """The command line both benchmarks share: ``--cells``, ``--seeds``, ``--trials``, ``--skip-done``,
    ``--summary``; runs the cells not yet written, then prints the summary table."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--cells", default=",".join(cells), help=f"comma-separated cells, of {', '.join(cells)}")
    p.add_argument("--seeds", type=int, default=4, help="RL² seeds per cell, vmapped (4: two per core)")
    p.add_argument("--trials", type=int, default=0, help="training trials per seed (0: the default per cell)")
    p.add_argument("--skip-done", action="store_true", help="skip cells whose result file exists")
    p.add_argument("--summary", action="store_true", help="only rebuild the summary from the cell files")
    p.add_argument("--reevaluate", action="store_true",
                   help="evaluate the saved policies of the cells already run again (no training)")
    p.add_argument("--instances", type=int, default=INSTANCES, help="task draws every method is evaluated on")
    args = p.parse_args(argv)
    args.cells = [c for c in args.cells.split(",") if c]
    unknown = [c for c in args.cells if c not in cells]
    if unknown:
        sys.exit(f"unknown cells {unknown}; available: {', '.join(cells)}")
    if not args.summary:
        run_cells(name, cells, make_config, compute, args, log)
    print(summarize(name, cells, columns, label))
