"""rejax 0.1.3 PPO on gymnax CartPole-v1, measured for benchmarks/ppo_cartpole.py (peers venv).

Adapted from ../../../shared/peers/rejax_ppo.py; prints one JSON line.

  rejax_ppo.py speed --seeds N --total T --repeats R [--keep-eval]   compile time, then steps/s of warm calls
  rejax_ppo.py start --total T                         train one seed, print the time the result is ready

Training only: ``eval_freq = total_timesteps`` and ``skip_initial_evaluation=True`` (as the
benchmark asks), and the single evaluation rejax still runs at the end of training (128
stochastic episodes) is replaced by a no-op, so neither the timings nor the compile include
any evaluation (the conservative choice for the comparison: it makes rejax slightly faster).
"""
import time

T_IMPORT = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from importlib import metadata  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from rejax import PPO  # noqa: E402

# Copied from github keraJLi/rejax configs/gymnax/cartpole.yaml (ppo:).
CARTPOLE = dict(env="CartPole-v1", agent_kwargs=dict(activation="tanh"), num_envs=5, num_steps=100, num_epochs=5,
                num_minibatches=5, learning_rate=0.00075, max_grad_norm=0.5, total_timesteps=100_000, eval_freq=1000,
                gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5)


def no_eval(algo, ts, rng):
    return jnp.zeros(1), jnp.zeros(1)


def make_algo(total: int, keep_eval: bool = False):
    """``keep_eval``: leave rejax's one end-of-training evaluation in (the issue's configuration,
    eval_freq = total_timesteps); otherwise it is a no-op and the program is training only."""
    cfg = dict(CARTPOLE, total_timesteps=total, eval_freq=total, skip_initial_evaluation=True)
    algo = PPO.create(**cfg)
    return algo if keep_eval else algo.replace(eval_callback=no_eval)


def steps_per_seed(algo) -> int:
    iter_steps = algo.num_envs * algo.num_steps
    n_evals = int(np.ceil(algo.total_timesteps / algo.eval_freq))
    return n_evals * int(np.ceil(algo.eval_freq / iter_steps)) * iter_steps


def speed(seeds: int, total: int, repeats: int, keep_eval: bool = False) -> dict:
    algo = make_algo(total, keep_eval)
    key = jax.random.PRNGKey(0)
    if seeds == 1:
        fn, arg = jax.jit(algo.train), key
    else:
        fn, arg = jax.jit(jax.vmap(algo.train)), jax.random.split(key, seeds)
    jax.block_until_ready(jax.jit(lambda x: x + 1)(jnp.zeros(())))  # backend start-up, not compile
    t = time.perf_counter()
    compiled = fn.lower(arg).compile()
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(1 + repeats):  # the first call is a warm-up
        t = time.perf_counter()
        jax.block_until_ready(compiled(arg))
        times.append(time.perf_counter() - t)
    steps = steps_per_seed(algo)
    warm = times[1:]
    return dict(lib="rejax", seeds=seeds, steps_per_seed=steps, compile_s=compile_s, first_call_s=times[0],
                warm_call_s=warm, sps_total_best=steps * seeds / min(warm),
                sps_total_median=steps * seeds / float(np.median(warm)),
                versions={m: metadata.version(m) for m in ("rejax", "gymnax", "jax", "flax")},
                devices=str(jax.devices()), load=os.getloadavg())


def start(total: int) -> dict:
    algo = make_algo(total)
    ts, _ = jax.jit(algo.train)(jax.random.PRNGKey(0))
    jax.block_until_ready(ts)
    return dict(lib="rejax", ready_unix=time.time(), imported_unix=T_IMPORT, steps=steps_per_seed(algo))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["speed", "start"])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--total", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--keep-eval", action="store_true", help="keep rejax's end-of-training evaluation")
    a = p.parse_args()
    out = speed(a.seeds, a.total, a.repeats, a.keep_eval) if a.mode == "speed" else start(a.total)
    print(json.dumps(out), flush=True)
