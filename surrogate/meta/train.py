"""Meta-training: the problem (sine regression or N-way K-shot classification), the jitted training loop
(meta-iterations as one ``lax.scan``, seeds vmapped), the final evaluation, and the run directory.

``make_trainer(algo, config)`` is the library API; ``train_in_dir`` is what ``surrogate train
reptile|fomaml|maml`` calls: ``runs/<name>/`` with ``config.json``, ``metrics.csv``, TensorBoard
events in ``tb/``, ``checkpoints/latest.msgpack`` (``surrogate.checkpoint``: msgpack, atomic) and ``eval.json``.
"""
import csv
import dataclasses
import io
import itertools
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tensorboardX import SummaryWriter

from surrogate import checkpoint
from surrogate._jax_setup import FAST, RUN_ONCE
from surrogate.errors import RunDirError
from surrogate.meta import convnet, sine
from surrogate.meta.config import Config
from surrogate.meta.inner import adapt, inner_optimizer
from surrogate.meta.learners import Inner, meta_step, outer_optimizer

EVAL_BATCH = 50  # evaluation tasks per vmapped batch


class MetaState(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array
    iteration: jax.Array


class Trainer(NamedTuple):
    """``init(keys [S]) -> MetaState [S]``; ``run(state, data, n) -> (state, metrics {name: [S, n]})``;
    ``evaluate(params [S], keys [S], data) -> {name: [S, tasks]}``; ``data``: the arrays ``run`` and
    ``evaluate`` read (passed as arguments, not baked into the program)."""
    init: Callable
    run: Callable
    evaluate: Callable
    data: dict
    config: Config


def load_images(config: Config) -> dict:
    """``{"train", "test"}`` image arrays ``[classes, examples, H, W, C]`` checked against the config."""
    from surrogate.data.fewshot import load_fewshot

    images = {split: np.asarray(load_fewshot(config.data, split), np.float32) for split in ("train", "test")}
    for split, a in images.items():
        config.check_data(split, a.shape[0], a.shape[1])
    return images


def _classification(algo, config: Config, images: dict):
    from surrogate.data.fewshot import sample_tasks

    for split, a in images.items():
        config.check_data(split, a.shape[0], a.shape[1])
    init_net, loss_fn, apply = convnet.make(config.n_way, config.filters)
    image_shape = images["train"].shape[2:]

    def sample_train(key, data):
        return sample_tasks(key, data["train"], config.meta_batch, config.n_way, config.shots, config.n_query)

    def sample_eval(key, data, n):
        return sample_tasks(key, data["test"], n, config.n_way, config.k_shot, config.eval_query)

    def score(params, task, adapted):
        xs, _, xq, yq = task
        return {"accuracy": jnp.mean(convnet.predict_non_transductive(apply, adapted, xs, xq) == yq),
                "accuracy_transductive": jnp.mean(convnet.predict_transductive(apply, adapted, xs, xq) == yq),
                "accuracy_before": jnp.mean(convnet.predict_non_transductive(apply, params, xs, xq) == yq)}

    return (lambda key: init_net(key, image_shape)), loss_fn, sample_train, sample_eval, score


def _sine(algo, config: Config):
    def sample_train(key, data):
        return sine.sample_tasks(key, config.meta_batch, config.shots, config.n_query)

    def sample_eval(key, data, n):
        return sine.sample_tasks(key, n, config.k_shot, config.eval_query)

    def score(params, task, adapted):
        _, _, xq, yq = task
        return {"mse": sine.loss_fn(adapted, xq, yq), "mse_before": sine.loss_fn(params, xq, yq)}

    return (lambda key: sine.init(key, config.hidden)), sine.loss_fn, sample_train, sample_eval, score


def make_trainer(algo: str, config: Config, images: dict | None = None) -> Trainer:
    """The jitted training and evaluation programs of ``algo`` (reptile, fomaml, maml or pretrain)."""
    config.validate(algo)
    if config.kind() == "sine":
        data = {}
        init_params, loss_fn, sample_train, sample_eval, score = _sine(algo, config)
    else:
        data = {k: jnp.asarray(v) for k, v in (images if images is not None else load_images(config)).items()}
        init_params, loss_fn, sample_train, sample_eval, score = _classification(algo, config, data)
    batch = config.inner_batch or 1 << 30
    inner = Inner(config.inner_steps, batch, inner_optimizer(config.inner_optimizer, config.inner_lr))
    updates = config.meta_iterations * (config.meta_batch if config.serial else 1)
    optimizer = outer_optimizer(config.outer_optimizer, config.outer_lr, updates, config.anneal)

    def init(key):
        k_params, k_run = jax.random.split(key)
        params = init_params(k_params)
        return MetaState(params, optimizer.init(params), k_run, jnp.zeros((), jnp.int32))

    def body(data, state, _):
        key, k_tasks, k_inner = jax.random.split(state.key, 3)
        tasks = sample_train(k_tasks, data)
        params, opt_state, metrics = meta_step(algo, loss_fn, inner, optimizer, state.params, state.opt_state, tasks,
                                               k_inner, serial=config.serial)
        return MetaState(params, opt_state, key, state.iteration + 1), metrics

    def scan_run(state, data, n):
        return jax.lax.scan(lambda s, x: body(data, s, x), state, None, length=n)

    eval_inner = Inner(config.eval_inner_steps, batch, inner.optimizer)

    def evaluate(params, key, data):
        def one(task, k):
            adapted = adapt(loss_fn, params, task[0], task[1], k, steps=eval_inner.steps,
                            batch_size=eval_inner.batch_size, optimizer=eval_inner.optimizer)
            return score(params, task, adapted)

        def chunk(k):
            k_tasks, k_inner = jax.random.split(k)
            tasks = sample_eval(k_tasks, data, EVAL_BATCH)
            return jax.vmap(one)(tasks, jax.random.split(k_inner, EVAL_BATCH))

        n = -(-config.eval_tasks // EVAL_BATCH)
        return jax.tree.map(lambda x: x.reshape(-1), jax.lax.map(chunk, jax.random.split(key, n)))

    scanned = jax.jit(jax.vmap(scan_run, in_axes=(0, None, None)), static_argnums=2, compiler_options=FAST)
    if config.kind() == "sine":
        run = scanned
    else:  # XLA:CPU runs convolutions ~3x slower inside a while loop (measured): one call per meta-iteration
        def run(state, data, n):
            metrics = []
            for _ in range(n):
                state, m = scanned(state, data, 1)
                metrics.append(m)
            return state, jax.tree.map(lambda *m: jnp.concatenate(m, axis=1), *metrics)

    return Trainer(jax.jit(jax.vmap(init), compiler_options=RUN_ONCE), run,
                   jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None)), compiler_options=FAST), data, config)


def summarize(per_task: dict) -> dict:
    """Per seed: the mean over evaluation tasks and its 95% interval; over seeds: mean and std."""
    out = {}
    for name, v in per_task.items():
        v = np.asarray(v, np.float64)
        per_seed = v.mean(axis=1)
        out[name] = float(per_seed.mean())
        out[f"{name}_std_over_seeds"] = float(per_seed.std())
        out[f"{name}_per_seed"] = per_seed.tolist()
        out[f"{name}_ci95_per_seed"] = (1.96 * v.std(axis=1) / np.sqrt(v.shape[1])).tolist()
    out["eval_tasks_per_seed"] = int(np.shape(next(iter(per_task.values())))[1])
    return out


def evaluate(trainer: Trainer, state: MetaState, seed: int = 0) -> dict:
    seeds = state.iteration.shape[0]
    keys = jax.vmap(lambda i: jax.random.PRNGKey(10_000 + seed + i))(jnp.arange(seeds))
    return summarize(jax.device_get(trainer.evaluate(state.params, keys, trainer.data)))


# ----------------------------------------------------------------------------- run directory

CONFIG, METRICS, EVAL = "config.json", "metrics.csv", "eval.json"
CKPT = Path("checkpoints") / "latest.msgpack"


def _write_metrics(path: Path, history: dict) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    names = sorted(history)
    w.writerow(["seed", "iteration", *names])
    seeds, n = history[names[0]].shape
    for s in range(seeds):
        for i in range(n):
            w.writerow([s, i + 1, *(f"{float(history[k][s, i]):.6g}" for k in names)])
    checkpoint.atomic_write(path, buf.getvalue().encode())


def config_from_saved(saved: dict, path) -> Config:
    fields = {f.name for f in dataclasses.fields(Config)}
    values = saved.get("config")
    if not isinstance(values, dict) or set(values) - fields:
        raise RunDirError(f"{path} holds no valid meta-learning config (unknown fields "
                          f"{sorted(set(values or {}) - fields)}). Restore it, or start a new run.")
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def train_in_dir(run_dir, algo: str | None = None, config: Config | None = None, seeds: int = 1, *, seed: int = 0,
                 resume: bool = False, checkpoint_every: int | None = None, overwrite: bool = False,
                 progress: bool = False, stop_after: int | None = None, images: dict | None = None) -> dict | None:
    """Meta-train into ``run_dir`` (or continue it with ``resume``), then evaluate into ``eval.json``.
    ``stop_after`` stops after that many meta-iterations without evaluating, as an interruption would.
    Returns the evaluation (``None`` when stopped early)."""
    from surrogate.run import prepare_dir, saved_run, write_json

    run_dir = Path(run_dir)
    if resume:
        saved = saved_run(run_dir, algo)
        algo, seeds, seed, checkpoint_every = saved["algo"], saved["seeds"], saved["seed"], saved["checkpoint_every"]
        config = config_from_saved(saved, run_dir / CONFIG)
    elif config is None:
        from surrogate.meta.config import default_config

        config = default_config(algo)
    config.validate(algo)
    if seeds < 1:
        raise RunDirError(f"--seeds must be >= 1, got {seeds}.")
    trainer = make_trainer(algo, config, images)
    total = config.meta_iterations
    every = checkpoint_every or max(1, -(-total // 20))
    keys = jax.vmap(lambda i: jax.random.PRNGKey(seed + i))(jnp.arange(seeds))
    state = trainer.init(keys)
    if resume:
        state, history, done = checkpoint.load(run_dir / CKPT, state)
    else:
        prepare_dir(run_dir, algo, config, seeds, seed, every, overwrite)
        history, done = {}, 0
    until = total if stop_after is None else min(total, done + stop_after)
    t0, start = time.perf_counter(), done
    with SummaryWriter(str(run_dir / "tb"), filename_suffix=f".from{done}") as tb:  # (run.DirLogger: why)
        while done < until:
            n = min(every, until - done)
            state, metrics = trainer.run(state, trainer.data, n)
            metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
            history = {k: np.concatenate([history[k], v], axis=1) if k in history else v for k, v in metrics.items()}
            checkpoint.save(run_dir / CKPT, state, history, done + n)
            _write_metrics(run_dir / METRICS, history)
            for (k, v), s, i in itertools.product(metrics.items(), range(seeds), range(n)):
                tb.add_scalar(f"seed{s}/{k}", float(v[s, i]), done + i + 1)  # step: the meta-iteration
            done += n
            if progress:
                rate = (done - start) / (time.perf_counter() - t0)
                last = ", ".join(f"{k} {float(np.mean(v[:, -1])):.4g}" for k, v in sorted(metrics.items()))
                print(f"{algo} {done}/{total} meta-iterations ({rate:.1f}/s): {last}", flush=True)
    if done < total:
        return None
    report = {"algo": algo, "data": config.data, "n_way": config.n_way, "k_shot": config.k_shot,
              "meta_iterations": total, "seeds": seeds, **evaluate(trainer, state, seed)}
    write_json(run_dir / EVAL, report)
    return report


def main(argv) -> int:
    """``surrogate train reptile|fomaml|maml --data ... [options] [hyperparameters]``."""
    import argparse

    import tyro

    from surrogate.errors import ConfigError
    from surrogate.meta.config import ALGOS, DATA_HELP, default_config

    p = argparse.ArgumentParser(prog="surrogate train reptile|fomaml|maml", add_help=False,
                                description="Run options; every other flag is a hyperparameter (see --help).")
    p.add_argument("algo", choices=ALGOS)
    p.add_argument("--data", default=None, help=f"{DATA_HELP} (default digits)")
    p.add_argument("--seeds", type=int, default=1, help="independent seeds, vmapped")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="run name (default ALGO-DATA)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--resume", default=None, metavar="RUN_DIR")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--checkpoint-every", type=int, default=None, help="meta-iterations between checkpoints")
    p.add_argument("--no-progress", action="store_true")
    opts, rest = p.parse_known_args(argv)
    data = opts.data or "digits"
    if "-h" in rest or "--help" in rest:
        p.print_help()
        print(f"\nhyperparameters of {opts.algo} (defaults for --data {data}):", flush=True)
        try:
            tyro.cli(Config, default=default_config(opts.algo, data), args=["--help"], prog=f"surrogate train {opts.algo}")
        except SystemExit as e:
            return e.code
    if opts.checkpoint_every is not None and opts.checkpoint_every < 1:
        raise ConfigError(f"--checkpoint-every must be >= 1, got {opts.checkpoint_every}.")
    if opts.resume:
        if rest or opts.data:
            raise ConfigError(f"--resume continues the configuration saved in {opts.resume}; remove "
                              f"{' '.join(rest + (['--data'] if opts.data else []))} or start a new run.")
        report, run_dir = train_in_dir(opts.resume, opts.algo, resume=True, progress=not opts.no_progress), opts.resume
    else:
        config = tyro.cli(Config, default=default_config(opts.algo, data), args=rest, prog=f"surrogate train {opts.algo}")
        name = opts.name or f"{opts.algo}-{data.split(':')[0]}"
        run_dir = Path(opts.runs_dir) / name
        report = train_in_dir(run_dir, opts.algo, config, opts.seeds, seed=opts.seed, overwrite=opts.overwrite,
                              checkpoint_every=opts.checkpoint_every, progress=not opts.no_progress)
    figures = [k for k in ("accuracy", "accuracy_transductive", "mse", "mse_before") if k in report]
    print(f"{run_dir}: " + ", ".join(f"{k} {report[k]:.4f} +- {report[k + '_std_over_seeds']:.4f}" for k in figures)
          + f" over {report['seeds']} seeds x {report['eval_tasks_per_seed']} tasks ({Path(run_dir) / EVAL})")
    return 0
