"""Stable-Baselines3 2.9.2 off-policy peers, training time only (no callback). Runs in the peers' venv.

DQN on CartPole-v1 with the rl-zoo3 hyperparameters (hyperparams/dqn.yml, 50k steps), TD3 on
Pendulum-v1 with SB3's defaults plus rl-zoo3's Pendulum entry (normal action noise 0.1,
learning_starts 1000), 20k steps.

  sb3_offpolicy.py dqn|td3 THREADS(1|default) SEED [TOTAL]

Adapted from ../../../shared/peers/sb3_offpolicy.py (versions added to the JSON line it prints);
the final return is 20 deterministic episodes after training, outside the timing.
"""
import json
import os
import sys
import time
from importlib import metadata

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, TD3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.noise import NormalActionNoise

algo_name, threads, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
if threads != "default":
    torch.set_num_threads(int(threads))
if algo_name == "dqn":
    env_id, total = "CartPole-v1", 50_000
    make = lambda env: DQN("MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
        learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
        exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]), seed=seed)
else:
    env_id, total = "Pendulum-v1", 20_000
    make = lambda env: TD3("MlpPolicy", env, learning_starts=1000,
        action_noise=NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)), seed=seed)
if len(sys.argv) > 4:
    total = int(sys.argv[4])
env = gym.make(env_id)
model = make(env)
t = time.perf_counter()
model.learn(total)
train_s = time.perf_counter() - t
m, s = evaluate_policy(model, gym.make(env_id), n_eval_episodes=20, deterministic=True, warn=False)
print(json.dumps(dict(lib="sb3", algo=algo_name, env=env_id, seed=seed, threads=torch.get_num_threads(),
    total=total, steps=int(model.num_timesteps), train_s=train_s, sps=model.num_timesteps / train_s,
    final_eval_mean=round(float(m), 1),
    versions={p: metadata.version(p) for p in ("stable-baselines3", "torch", "gymnasium")}, load=os.getloadavg())),
    flush=True)
