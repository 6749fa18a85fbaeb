"""sb3-contrib 2.9.2 TRPO (torch, CPU) with its defaults, measured for benchmarks/trpo_speed.py (peers venv).

  sb3c_trpo.py --env Pendulum-v1 --total 20480 --threads 1

Defaults of ``sb3_contrib.TRPO``: one environment, n_steps 2048, 15 CG iterations, damping 0.1,
line search 10 x 0.8, target KL 0.01, 10 critic epochs of minibatch 128 at lr 1e-3, gamma 0.99,
GAE lambda 0.95, 64-64 tanh policy and value networks. A warm-up ``learn`` of one rollout runs
first (set-up); the timed ``learn`` continues the same model. Prints one JSON line.
"""
import argparse
import json
import time
from importlib import metadata

import gymnasium as gym
import torch
from sb3_contrib import TRPO


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--total", type=int, default=20480)
    p.add_argument("--threads", default="1", help="torch threads: a number or 'default'")
    a = p.parse_args()
    if a.threads != "default":
        torch.set_num_threads(int(a.threads))
    model = TRPO("MlpPolicy", gym.make(a.env), seed=0, device="cpu")
    model.learn(model.n_steps)  # warm-up: first rollout and update
    t = time.perf_counter()
    model.learn(a.total, reset_num_timesteps=False)
    wall = time.perf_counter() - t
    print(json.dumps({"lib": "sb3-contrib", "env": a.env, "steps": a.total, "wall_s": wall, "sps": a.total / wall,
                      "threads": torch.get_num_threads(), "n_steps": model.n_steps, "batch_size": model.batch_size,
                      "n_critic_updates": model.n_critic_updates, "cg_max_steps": model.cg_max_steps,
                      "versions": {m: metadata.version(m) for m in ("sb3-contrib", "stable-baselines3", "torch",
                                                                     "gymnasium", "mujoco")}}))


if __name__ == "__main__":
    main()
