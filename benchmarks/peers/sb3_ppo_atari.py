"""Stable-Baselines3 2.9.2 PPO ``CnnPolicy`` (torch, CPU) on ALE/Pong-v5 with CleanRL's ppo_atari settings
(8 envs x 128 steps, 4 epochs, 4 minibatches of 256, lr 2.5e-4, clip 0.1, entropy 0.01, value 0.5, grad
norm 0.5, gamma 0.99, GAE 0.95), SB3's AtariWrapper (no-op reset, frame skip 4 + max, episodic life, FIRE
reset, 84x84 grey, reward clip) and a 4-frame stack, no sticky actions: measured for benchmarks/atari.py
(peers venv, which needs ale-py 0.12.1 and opencv-python-headless). Adapted from
../../../shared/peers/sb3_ppo_atari.py; adds a profile of its iterations.

  sb3_ppo_atari.py --total 12288 [--threads N]

Prints one JSON line: training steps/s (``learn`` only), the raw rate of the same 8 wrapped envs with
random actions, and seconds per iteration in env steps (inside ``VecEnv.step``), the rest of
``collect_rollouts`` (the policy's forward passes, buffer writes) and ``train`` (the update).
"""
import argparse
import json
import os
import time
from importlib import metadata

import ale_py
import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack

gym.register_envs(ale_py)
p = argparse.ArgumentParser()
p.add_argument("--total", type=int, required=True)
p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
env = VecFrameStack(make_atari_env("ALE/Pong-v5", n_envs=8, seed=0,
                                   env_kwargs=dict(frameskip=1, repeat_action_probability=0.0)), 4)
env.reset()
t = time.perf_counter()
n = 0
while n < 8 * 500:
    env.step(np.array([env.action_space.sample() for _ in range(8)]))
    n += 8
raw = n / (time.perf_counter() - t)

model = PPO("CnnPolicy", env, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4, clip_range=0.1,
            ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, seed=0)
spent = {"env": 0.0, "collect": 0.0, "train": 0.0}


def timed(name, f):
    def g(*args, **kwargs):
        t = time.perf_counter()
        out = f(*args, **kwargs)
        spent[name] += time.perf_counter() - t
        return out
    return g


model.env.step = timed("env", model.env.step)
model.collect_rollouts = timed("collect", model.collect_rollouts)
model.train = timed("train", model.train)
t = time.perf_counter()
model.learn(a.total)
train_s = time.perf_counter() - t
iterations = a.total // (8 * 128)
prof = {"env_s": spent["env"] / iterations, "act_s": (spent["collect"] - spent["env"]) / iterations,
        "update_s": spent["train"] / iterations, "iteration_s": train_s / iterations, "steps_per_iteration": 1024}
print(json.dumps(dict(lib="sb3", algo="PPO CnnPolicy", env="ALE/Pong-v5", threads=torch.get_num_threads(),
                      total=a.total, train_s=round(train_s, 2), sps=round(a.total / train_s, 1),
                      raw_wrapped_vec8_sps=round(raw, 1), profile_s_per_iteration={k: round(v, 3) for k, v in prof.items()},
                      load=os.getloadavg(), versions={m: metadata.version(m) for m in
                                                      ("stable_baselines3", "torch", "ale_py", "gymnasium")})))
