"""CEM on CartPole-v1 (JAX backend): how close the population's evaluation inside a training iteration
comes to the raw vmapped env step rate, and what the default config learns.

``fraction_of_raw`` (target >= 0.5): env steps/s of our jitted training run of ``--iterations``
iterations (one seed, the default config: a population of 100 linear policies, each playing one
episode), counting population x max_episode_steps steps per iteration (the episodes run the full
horizon: finished ones stop counting but keep stepping), divided by the raw rate of the same env with
the same batch (population envs, random actions, one ``lax.scan`` of as many steps, jitted). Two raw
references are measured; the faster counts: ``raw_step_to_sps`` steps with our ``JaxEnv.step_to``
(what the rollouts call) with the keys and random actions drawn up front, and no resets;
``raw_gymnax_sps`` steps with gymnax's own ``step`` (auto-reset, a key split and a ``randint`` per step),
the loop a gymnax user writes. Each side: one warm-up call (compile), then ``--rounds`` timed calls
with ``block_until_ready``, ours and the raw loops alternating; the fastest call counts (noise on a
shared CPU only slows things down), the median is kept beside it (``*_median``). The same figures
from this process's CPU time are kept as ``*_cpu*``: on a machine shared with other work they move
less than wall-clock times (all programs here run on one thread; CPU time would count a second
one). Our training program includes CEM's update and the sampling of the next population (both
tiny next to 50k env steps). ``episode_steps_per_call`` counts the steps inside episodes: the rest
of the horizon is computed and thrown away (``runtime.rollout.jax_episodes``).

Learning: ``final_returns`` are the mean returns over 20 deterministic episodes of the mean policy
of each of 4 seeds after the default config's iterations (one jitted run, seeds vmapped and sharded);
``iterations_to_475`` per seed, the first iteration after which that evaluation reached 475.

  python benchmarks/cem_cartpole.py                              # full run, ~1 minute on 2 cores
  python benchmarks/cem_cartpole.py --quick --out /tmp/q.json    # smoke test, a few seconds
"""
import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (first: sets the host device count before jax is imported)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from common import RESULTS, write_result  # noqa: E402
from surrogate import envs  # noqa: E402
from surrogate.algos import cem  # noqa: E402
from surrogate.runtime import jax_driver  # noqa: E402
from surrogate.runtime.rollout import keys_like  # noqa: E402


def timed(fn, arg, out: list):
    """Append ``(wall seconds, this process's CPU seconds)`` of one call."""
    t, c = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(arg))
    out.append((time.perf_counter() - t, time.process_time() - c))


def raw_step_to(env, n: int, steps: int):
    """``steps`` steps of ``n`` envs with ``step_to`` (no resets), keys and random actions drawn up front."""
    step = jax.vmap(env.step_to, in_axes=(0, 0, 0, 0, None))

    def run(key):
        k_reset, k_bits, k_act = jax.random.split(key, 3)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, n))
        bits = jax.random.bits(k_bits, (steps, n, 2))
        actions = jax.random.randint(k_act, (steps, n), 0, env.action_dim)

        def body(carry, x):
            obs, state = carry
            obs, state, reward, done, _ = step(keys_like(key, x[0]), state, x[1], (obs, state), env.default_params)
            return (obs, state), reward

        (obs, _), rewards = jax.lax.scan(body, (obs, state), (bits, actions))
        return obs.sum() + rewards.sum()

    return jax.jit(run)


def raw_gymnax(env, n: int, steps: int):
    """``steps`` steps of ``n`` envs with gymnax's ``step`` (auto-reset), a key split and random actions per step."""
    gym_env, params = env.env, env.default_params
    step = jax.vmap(gym_env.step, in_axes=(0, 0, 0, None))

    def run(key):
        k_reset, key = jax.random.split(key)
        obs, state = jax.vmap(gym_env.reset, in_axes=(0, None))(jax.random.split(k_reset, n), params)

        def body(carry, _):
            obs, state, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            actions = jax.random.randint(k_act, (n,), 0, env.action_dim)
            obs, state, reward, *_ = step(jax.random.split(k_step, n), state, actions, params)  # (gymnax 1.0: 6 values)
            return (obs, state, key), reward

        (obs, _, _), rewards = jax.lax.scan(body, (obs, state, key), None, length=steps)
        return obs.sum() + rewards.sum()

    return jax.jit(run)


def speed(cfg, env, iterations: int, rounds: int) -> dict:
    program = jax_driver.train_program(cem.ALGO, cfg, env, 1, iterations)
    runner = jax_driver.initial_state(cem.ALGO, cfg, env, jax.random.split(jax.random.PRNGKey(0), 1))
    n = cfg.population_size * cfg.episodes_per_candidate
    steps = iterations * env.max_episode_steps  # per env
    raws = {"raw_step_to": raw_step_to(env, n, steps), "raw_gymnax": raw_gymnax(env, n, steps)}
    t = time.perf_counter()
    _, metrics = jax.block_until_ready(program(runner))
    compile_s = time.perf_counter() - t
    for fn in raws.values():
        jax.block_until_ready(fn(jax.random.PRNGKey(1)))
    times = {"ours": [], **{k: [] for k in raws}}
    for r in range(rounds):
        timed(program, runner, times["ours"])
        for k, fn in raws.items():
            timed(fn, jax.random.PRNGKey(2 + r), times[k])
    total, out = n * steps, {}
    for clock, suffix in ((0, ""), (1, "_cpu")):  # wall clock; this process's CPU time (less hit by other work)
        for stat, name in ((min, ""), (statistics.median, "_median")):
            rate = {k: total / stat([t[clock] for t in v]) for k, v in times.items()}
            out[f"fraction_of_raw{suffix}{name}"] = rate["ours"] / max(rate["raw_step_to"], rate["raw_gymnax"])
            out.update({f"{k}_sps{suffix}{name}": r for k, r in rate.items()})
    taken = float(np.asarray(metrics["episode_length_sum"]).sum())
    return {**out, "timed_iterations": iterations, "population": n, "env_steps_per_call": total,
            "episode_steps_per_call": taken, "speed_rounds": rounds, "first_call_s": compile_s}


def learning(cfg, env, seeds: int) -> dict:
    """One run of ``seeds`` seeds; after every iteration each seed's mean policy is evaluated."""
    evals = []

    def logger(result, done):
        evals.append([float(cem.ALGO.evaluate(cfg, env, *cem.ALGO.seed_policy(cfg, result, i),
                                              jax.random.PRNGKey(10_000 + i), 20).mean()) for i in range(seeds)])

    t = time.perf_counter()
    cem.ALGO.train(cfg, env, jax.random.PRNGKey(0), seeds=seeds, logger=logger, chunk_updates=1)
    wall = time.perf_counter() - t
    evals = np.array(evals)  # [iterations, seeds]
    first = lambda col: next((i + 1 for i, r in enumerate(col) if r >= 475), None)
    return {"final_returns": evals[-1].tolist(), "final_return_min": float(evals[-1].min()),
            "iterations": cfg.iterations, "seeds": seeds,
            "iterations_to_475": [first(evals[:, i]) for i in range(seeds)],
            "learning_wall_s_with_evals": wall}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny config to check the script")
    p.add_argument("--iterations", type=int, default=None, help="iterations per timed call (default 20; quick 2)")
    p.add_argument("--rounds", type=int, default=None, help="timed calls per side (default 7; quick 2)")
    p.add_argument("--out", default=str(RESULTS / "cem_cartpole.json"))
    a = p.parse_args()
    env = envs.make("CartPole-v1")
    cfg = cem.Config()
    if a.quick:
        cfg = dataclasses.replace(cfg, iterations=3, population_size=20, elite_frac=0.2)
    iterations = a.iterations or (2 if a.quick else cfg.iterations)
    rounds = a.rounds or (2 if a.quick else 7)
    figures = {"config": dataclasses.asdict(cfg), "quick": a.quick, **speed(cfg, env, iterations, rounds),
               **learning(cfg, env, 2 if a.quick else 4)}
    out = write_result(Path(a.out), figures)
    for k in ("fraction_of_raw", "fraction_of_raw_median", "fraction_of_raw_cpu", "fraction_of_raw_cpu_median",
              "ours_sps", "raw_step_to_sps", "raw_gymnax_sps", "final_returns", "iterations_to_475"):
        print(f"{k}: {out[k]}")


if __name__ == "__main__":
    main()
