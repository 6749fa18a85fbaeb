"""rejax 0.1.3 off-policy peers (DQN on CartPole-v1, TD3 on Pendulum-v1) at rejax's own configs
(github keraJLi/rejax configs/gymnax/{cartpole,pendulum}.yaml), training only. Runs in the peers' venv.

  rejax_offpolicy.py dqn|td3 NSEEDS [TOTAL [REPEATS]]

Adapted from ../../../shared/peers/rejax_offpolicy.py: evaluation is pushed to the end (eval_freq =
total, skip_initial_evaluation) and the one evaluation rejax would still compile into training is
replaced by a no-op, so the timed calls are training only; the final returns come from rejax's own
evaluation (128 episodes, epsilon 0.005 for DQN) of the trained state, run after the timing.
Compile = jit(...).lower(key).compile(); steps/s from REPEATS (2) warm calls after a warm-up call.
Prints one JSON line.
"""
import json
import os
import sys
import time
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np
from rejax import DQN, TD3

algo_name, nseeds = sys.argv[1], int(sys.argv[2])
CFGS = {
    "dqn": (DQN, dict(env="CartPole-v1", agent="DuelingQNetwork", agent_kwargs=dict(activation="swish"),
        num_envs=10, buffer_size=50_000, fill_buffer=5_000, batch_size=100, max_grad_norm=10,
        learning_rate=0.001, num_epochs=5, total_timesteps=100_000, polyak=0.98, eps_start=1,
        eps_end=0.05, exploration_fraction=0.5, gamma=0.99, ddqn=True, normalize_observations=False)),
    "td3": (TD3, dict(env="Pendulum-v1", actor_kwargs=dict(activation="swish"),
        critic_kwargs=dict(activation="swish"), num_envs=1, buffer_size=10_000, fill_buffer=1000,
        batch_size=100, learning_rate=0.001, num_epochs=1, total_timesteps=10_000, gamma=0.99,
        polyak=0.95, max_grad_norm=100, exploration_noise=0.3, target_noise=0.2,
        target_noise_clip=0.5, policy_delay=2, normalize_observations=True)),
}
cls, cfg = CFGS[algo_name]
cfg = dict(cfg)
if len(sys.argv) > 3:
    cfg["total_timesteps"] = int(sys.argv[3])
repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 2
cfg["eval_freq"] = cfg["total_timesteps"]
cfg["skip_initial_evaluation"] = True
algo = cls.create(**cfg)
evaluate = algo.eval_callback
train_only = algo.replace(eval_callback=lambda algo, ts, rng: (jnp.zeros(1), jnp.zeros(1)))
key = jax.random.PRNGKey(0)
if nseeds == 1:
    fn, arg = jax.jit(train_only.train), key
else:
    fn, arg = jax.jit(jax.vmap(train_only.train)), jax.random.split(key, nseeds)
jax.block_until_ready(jax.jit(lambda x: x + 1)(jnp.zeros(())))  # backend start-up, not compile
t = time.perf_counter()
compiled = fn.lower(arg).compile()
compile_s = time.perf_counter() - t
times = []
for _ in range(1 + repeats):  # the first call is a warm-up
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(arg))
    times.append(time.perf_counter() - t)
ts, _ = out
# the number of env steps rejax takes: ceil(total / eval_freq) blocks of ceil(eval_freq / num_envs) iterations
steps = int(np.ceil(cfg["eval_freq"] / cfg["num_envs"])) * cfg["num_envs"]
final = jax.jit(lambda ts, k: evaluate(algo, ts, k))
if nseeds == 1:
    lens, rets = final(ts, jax.random.PRNGKey(1))
    per_seed = [float(np.mean(rets))]
else:
    keys = jax.random.split(jax.random.PRNGKey(1), nseeds)
    lens, rets = jax.jit(jax.vmap(lambda ts, k: evaluate(algo, ts, k)))(ts, keys)
    per_seed = np.asarray(rets).reshape(nseeds, -1).mean(1).round(1).tolist()
warm = times[1:]
print(json.dumps(dict(lib="rejax", algo=algo_name, env=cfg["env"], nseeds=nseeds, total=cfg["total_timesteps"],
    steps_per_seed=steps, compile_s=round(compile_s, 3), first_call_s=times[0], warm_call_s=warm,
    sps_total_best=steps * nseeds / min(warm), sps_total_median=steps * nseeds / float(np.median(warm)),
    final_return_per_seed=per_seed, final_return_mean=float(np.mean(per_seed)),
    final_return_note="rejax's evaluation of the trained state: 128 episodes, epsilon 0.005" if algo_name == "dqn" else
    "rejax's evaluation of the trained state: 128 episodes",
    versions={m: metadata.version(m) for m in ("rejax", "gymnax", "jax", "flax")}, devices=str(jax.devices()),
    load=os.getloadavg())), flush=True)
