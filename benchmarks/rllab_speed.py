"""Speed of the rllab grid (issue 27): each trial's training rate against the raw vmapped env step rate,
CMA-ES against the `cma` package, DDPG against Stable-Baselines3 — one run, one results file.

(1) ``grid_fraction_of_raw``: for each (algorithm, basic task) of ``--algos`` x ``--tasks``, a trial at
the protocol (``surrogate.bench.rllab.protocol_config``: 100 envs x 500 steps per iteration, 100-50-25
tanh policy, ...) with ``--seeds`` seeds vmapped: the env steps per second of ``--iterations`` warm
iterations (compile excluded, the fastest of ``--repeats``), divided by the raw rate of the same task
measured here: a jitted ``lax.scan`` of 500 steps of ``vmap(env.step)`` over seeds x 100 envs with
uniform random actions in [-1, 1] (the env alone: no policy). The figure is the smallest trial
fraction of the basic tasks (the issue: ">= 50% per trial"); every trial's is kept, with where its time
goes: the same program with ``learn`` a no-op gives the collecting rate (env + policy) and learn's share. (2)
``speedup_vs_cma``: ``cmaes_check.measure_cmaes_speed`` (ours vs `cma` 4.5.0 asking and telling around our
jitted population evaluation). (3) ``speedup_vs_sb3_ddpg``: ``ddpg_speed.py`` in a subprocess (ours at
preset ``sb3`` vs SB3 2.9.2 DDPG at its defaults on Pendulum-v1).

  python benchmarks/rllab_speed.py                  # quiet machine (~20 min); writes results/rllab_speed.json
  python benchmarks/rllab_speed.py --quick --out /tmp/r.json   # smoke test, not a measurement
"""
import os

ORIG_ENV = dict(os.environ)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

from surrogate import envs  # noqa: E402
from surrogate.algos import get  # noqa: E402
from surrogate.bench import rllab  # noqa: E402
from surrogate.runtime import jax_driver  # noqa: E402


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def raw_rate(env, num_envs: int, steps: int, repeats: int) -> float:
    """Env steps/s of ``steps`` steps of ``vmap(env.step)`` over ``num_envs`` envs, random actions."""
    low, high = env.action_bounds

    def run(key):
        obs, state = jax.vmap(env.reset)(jax.random.split(key, num_envs))

        def one(carry, k):
            state, total = carry
            ka, ks = jax.random.split(k)
            actions = jax.random.uniform(ka, (num_envs, env.action_dim), minval=low, maxval=high)
            obs, state, reward, done, _ = jax.vmap(env.step)(jax.random.split(ks, num_envs), state, actions)
            return (state, total + reward.sum() + obs.sum()), None

        return jax.lax.scan(one, (state, jnp.zeros(())), jax.random.split(key, steps))[0][1]

    fn = jax.jit(run)
    key = jax.random.PRNGKey(0)
    jax.block_until_ready(fn(key))
    return num_envs * steps / best_of(lambda: fn(key), repeats)


def trial_rate(algo_name: str, task: str, seeds: int, iterations: int, batch: int, repeats: int) -> dict:
    algo, env = get(algo_name), rllab.make_env(task)
    config = rllab.protocol_config(algo, env, iterations=max(iterations, 2), batch=batch, ddpg_steps=10 ** 9)
    n = min(iterations, algo.num_iterations(config))
    if algo.name in rllab.OFF_POLICY:  # one update per env step: time 2,000 steps past the warm-up
        n = 2_000 // algo.steps_per_iteration(config, env)
        config = dataclasses.replace(config, learning_starts=config.batch_size)  # (train from the start)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    program = jax_driver.train_program(algo, config, env, seeds, n)
    runner = jax_driver.initial_state(algo, config, env, keys)
    t = time.perf_counter()
    jax.block_until_ready(program(runner))
    compile_s = time.perf_counter() - t
    seconds = best_of(lambda: program(runner), repeats)
    # where the time goes: the same program with learn() a no-op (collecting alone: env + policy)
    collect_only = algo._replace(learn=lambda config, env, state, experience, key: (state, {}))
    program = jax_driver.train_program(collect_only, config, env, seeds, n)
    jax.block_until_ready(program(runner))
    collect_s = best_of(lambda: program(runner), repeats)
    steps = seeds * n * algo.steps_per_iteration(config, env)
    return dict(steps_per_s=steps / seconds, seconds=seconds, iterations=n, compile_and_first_s=compile_s,
                collect_only_steps_per_s=steps / collect_s, learn_share=max(0.0, 1 - collect_s / seconds),
                steps_per_iteration=algo.steps_per_iteration(config, env))


def grid_speed(a) -> dict:
    out = {}
    for task in a.tasks:
        env = rllab.make_env(task)
        raw = raw_rate(env, a.seeds * 100, 500, a.repeats)
        log(f"{task}: raw {raw:,.0f} steps/s ({a.seeds} x 100 envs)")
        out[task] = {"raw_steps_per_s": raw}
        for algo in a.algos:
            r = trial_rate(algo, task, a.seeds, a.iterations, a.batch, a.repeats)
            r["fraction_of_raw"] = r["steps_per_s"] / raw
            out[task][algo] = r
            log(f"  {algo}: {r['steps_per_s']:,.0f} steps/s = {r['fraction_of_raw']:.4f} of raw; collecting alone "
                f"{r['collect_only_steps_per_s']:,.0f} steps/s = {r['collect_only_steps_per_s'] / raw:.3f} of raw; "
                f"learn {r['learn_share']:.0%} of the trial's time")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--algos", nargs="+", default=list(rllab.ALGOS))
    p.add_argument("--tasks", nargs="+", default=list(rllab.BASIC))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip", nargs="*", default=[], choices=["grid", "cma", "ddpg"])
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--out", default=str(RESULTS / "rllab_speed.json"))
    a = p.parse_args()
    if a.quick:
        a.tasks, a.algos, a.seeds, a.batch, a.repeats = a.tasks[:1], a.algos[:2], 1, 1000, 1
    f = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
    if "grid" not in a.skip:
        grid = f.get("grid", {})  # merged with earlier invocations' tasks and algorithms
        for task, row in grid_speed(a).items():
            grid[task] = {**grid.get(task, {}), **row}
        f["grid"] = grid
        fractions = {f"{al}__{t}": r["fraction_of_raw"] for t, row in grid.items() for al, r in row.items()
                     if isinstance(r, dict)}
        f["grid_fraction_of_raw"] = min(fractions.values())
        f["grid_fraction_of_raw_per_trial"] = fractions
        f["grid_setting"] = dict(seeds=a.seeds, batch=a.batch, iterations=a.iterations, repeats=a.repeats)
    if "cma" not in a.skip:
        from cmaes_check import measure_cmaes_speed

        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        log("CMA-ES: ours vs cma 4.5.0 driving the same evaluations")
        r = measure_cmaes_speed(generations=5 if a.quick else 20, rounds=1 if a.quick else 3)
        f["cmaes"], f["speedup_vs_cma"] = r, r["speedup_vs_cma"]
        log(f"  speedup_vs_cma {r['speedup_vs_cma']:.2f}x")
    if "ddpg" not in a.skip:
        log("DDPG: ours vs SB3 (benchmarks/ddpg_speed.py)")
        tmp = Path(a.out).with_suffix(".ddpg.json")
        cmd = [sys.executable, HERE / "ddpg_speed.py", "--out", tmp, "--peers-python", a.peers_python]
        proc = subprocess.run([str(c) for c in cmd + (["--quick"] if a.quick else [])], env=ORIG_ENV,
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"ddpg_speed.py failed:\n{proc.stderr[-3000:]}")
        r = json.loads(tmp.read_text())
        tmp.unlink()
        f["ddpg"] = {k: v for k, v in r.items() if k not in ("command", "date", "machine", "versions")}
        f["speedup_vs_sb3_ddpg"] = r["speedup_vs_sb3_sps"]
        log(f"  speedup_vs_sb3_ddpg {f['speedup_vs_sb3_ddpg']}")
    write_result(Path(a.out), f)
    log(f"-> {a.out}")


if __name__ == "__main__":
    main()
