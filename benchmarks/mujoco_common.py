"""What the MuJoCo and speed benchmarks share: one training run per task x seed written to its own
file, the PPO paper's last-100-episodes score, the raw environment step rate, and training steps/s
measured by run difference."""
import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
from common import write_result

from surrogate import envs
from surrogate.run import episode_curve


def last_100_mean(history):
    """Mean return of the last 100 training episodes (the PPO paper's Table 1 metric), approximated by
    the per-update means weighted by their episode counts over the final updates holding >= 100 episodes."""
    ret, cnt = history["episode_return_sum"][0], history["episode_count"][0]
    total, n = 0.0, 0
    for r, c in zip(ret[::-1], cnt[::-1]):
        total, n = total + r, n + c
        if n >= 100:
            break
    return float(total / max(n, 1))


def run_one(module, config, seed: int, out: Path) -> dict:
    """Train one seed of ``module`` (an algorithm module) with ``config``; write its figures to ``out``."""
    env = envs.make(config.env)
    t = time.perf_counter()
    result = module.ALGO.train(config, env, jax.random.PRNGKey(seed))
    wall = time.perf_counter() - t
    params, stats = module.ALGO.seed_policy(config, result, 0)
    ev = module.ALGO.evaluate(config, env, params, stats, jax.random.PRNGKey(10_000 + seed), 10)
    curve = episode_curve(result.history)[0]
    fig = {"task": config.env, "seed": seed, "total_steps": config.num_updates * config.batch_size,
           "final_return_last100_train_episodes": last_100_mean(result.history),
           "final_eval_return_10ep_deterministic": float(np.mean(ev)), "wall_s": round(wall, 1),
           "curve_every_10_updates": [None if not np.isfinite(x) else round(float(x), 1) for x in curve[::10]],
           "config": dataclasses.asdict(config)}
    write_result(out, fig)
    print(f"{config.env} seed {seed}: last-100 {fig['final_return_last100_train_episodes']:.0f}, "
          f"eval {fig['final_eval_return_10ep_deterministic']:.0f}, {wall:.0f}s", flush=True)
    return fig


def raw_rate(task: str, steps: int = 20_000) -> float:
    """Single Gymnasium env, random actions, resets included: the reference step rate."""
    import gymnasium as gym

    env = gym.make(task)
    env.reset(seed=0)
    env.action_space.seed(0)
    acts = [env.action_space.sample() for _ in range(1000)]
    t = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step(acts[i % 1000])
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def training_rate(module, config, updates: int = 20) -> float:
    """Training steps/s (rollout + update, compile and set-up excluded): the time of a run of
    ``1 + updates`` updates minus that of a 1-update run (both after a first run that compiles), so
    the updates are timed as they run in training, in one chunk (work an algorithm leaves running in
    the background, such as a critic's fit during the next rollout, overlaps as it does there)."""
    config = dataclasses.replace(config, total_steps=(updates + 1) * config.batch_size)
    env = envs.make(config.env)
    key = jax.random.PRNGKey(0)
    jax.block_until_ready(module.ALGO.train(config, env, key, until=1).state)  # compiles
    t = time.perf_counter()
    jax.block_until_ready(module.ALGO.train(config, env, key, until=1).state)
    one = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(module.ALGO.train(config, env, key).state)
    many = time.perf_counter() - t
    return updates * config.batch_size / (many - one)
