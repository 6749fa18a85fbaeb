"""Stable-Baselines3 2.9.2 DDPG at its defaults on Pendulum-v1, training time only. Runs in the peers' venv.

SB3's defaults (stable_baselines3/ddpg/ddpg.py): 400-300 ReLU actor and critic (the action concatenated at
the critic's input), lr 1e-3, buffer 1e6, learning_starts 100 (uniform random actions before), batch 256,
tau 0.005, gamma 0.99, one gradient step per env step, no action noise. ``learn(WARMUP)`` runs first (its
random steps, the first gradient steps, torch's lazy start-up), untimed; then ``learn(TOTAL,
reset_num_timesteps=False)`` is timed: training steps/s with an update after every step. The final return
(20 deterministic episodes) is measured after the timing.

  sb3_ddpg.py THREADS(1|default) SEED [TOTAL [WARMUP]]      # defaults 5000 timed steps after 1000
"""
import json
import os
import sys
import time
from importlib import metadata

import gymnasium as gym
import torch
from stable_baselines3 import DDPG
from stable_baselines3.common.evaluation import evaluate_policy

threads, seed = sys.argv[1], int(sys.argv[2])
total = int(sys.argv[3]) if len(sys.argv) > 3 else 5_000
warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000
if threads != "default":
    torch.set_num_threads(int(threads))
env_id = "Pendulum-v1"
model = DDPG("MlpPolicy", gym.make(env_id), seed=seed, device="cpu")
model.learn(warmup)
t = time.perf_counter()
model.learn(total, reset_num_timesteps=False)
train_s = time.perf_counter() - t
m, s = evaluate_policy(model, gym.make(env_id), n_eval_episodes=20, deterministic=True, warn=False)
print(json.dumps(dict(lib="sb3", algo="ddpg", env=env_id, seed=seed, threads=torch.get_num_threads(), total=total,
                      warmup=warmup, steps=int(model.num_timesteps) - warmup, train_s=train_s, sps=total / train_s,
                      final_eval_mean=round(float(m), 1),
                      versions={p: metadata.version(p) for p in ("stable-baselines3", "torch", "gymnasium")},
                      load=os.getloadavg())), flush=True)
