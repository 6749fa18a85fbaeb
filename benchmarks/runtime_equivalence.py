"""Metrics of PPO/TRPO/TNPG/VPG runs, short, for a before/after comparison of the runtime redesign."""
import json, sys, time
import numpy as np
import jax
from surrogate import envs
from surrogate.algos import ppo, trpo

def run(module, config, seeds):
    env = envs.make(config.env)
    r = module.train(config, env, jax.random.PRNGKey(3), seeds=seeds)
    return {k: np.asarray(v).tolist() for k, v in r.history.items()}

CASES = {
  "ppo_jax_joint": (ppo, ppo.Config(total_steps=256*6), 2),
  "ppo_jax_rejax_1seed": (ppo, ppo.PRESETS["cartpole-rejax"].__class__(**{**ppo.PRESETS["cartpole-rejax"].__dict__, "total_steps": 500*4}), 1),
  "ppo_jax_rejax_2seeds": (ppo, ppo.PRESETS["cartpole-rejax"].__class__(**{**ppo.PRESETS["cartpole-rejax"].__dict__, "total_steps": 500*4}), 2),
  "ppo_jax_pendulum_norm": (ppo, ppo.Config(env="Pendulum-v1", total_steps=256*4, normalize_obs=True, normalize_reward=True), 2),
  "ppo_host_cartpole": (ppo, ppo.Config(env="gym:CartPole-v1", total_steps=256*4), 1),
  "ppo_host_separate": (ppo, ppo.Config(env="gym:CartPole-v1", total_steps=256*4, separate_updates=True), 1),
  "trpo_jax_1seed": (trpo, trpo.Config(total_steps=1024*4), 1),
  "trpo_jax_2seeds_trvf": (trpo, trpo.Config(total_steps=1024*4, vf_fit="trust_region"), 2),
  "tnpg_jax": (trpo, trpo.Config(method="tnpg", total_steps=1024*3), 2),
  "vpg_jax": (trpo, trpo.Config(method="vpg", total_steps=1024*3), 2),
  "trpo_host_pendulum": (trpo, trpo.Config(env="gym:Pendulum-v1", total_steps=1024*3, normalize_obs=True), 1),
}
out = {}
for name, (m, c, s) in CASES.items():
    t = time.time(); out[name] = run(m, c, s); print(name, f"{time.time()-t:.1f}s", flush=True)
json.dump(out, open(sys.argv[1], "w"))
