"""sb3-contrib 2.9.2 RecurrentPPO (torch, CPU) on RL²'s bandit trial (Duan et al. 2016, sec. 4.1) at the shape
of our ``Bandit-k5-n10-rl2`` and our rl2 defaults: a trial of 10 pulls of 5 Bernoulli arms (means ~ U[0, 1],
redrawn at each trial), observation (1, one-hot previous arm, previous reward, flag); 128 envs x 10 steps
(one trial each) per update, 8 epochs of 4 minibatches (batch 320), lr 3e-3, gamma 0.99, GAE 0.3, clip 0.2,
ent 0, an LSTM of 128 for the actor and one for the critic (sb3-contrib has no GRU), no MLP after them.

  sb3c_rl2_bandit.py THREADS SEED UPDATES

Prints one JSON line: the training time, the rate in env steps/s, and the time spent in ``train()`` (the
policy update alone: sb3's ``learn`` alternates ``collect_rollouts`` and ``train``).
"""
import json
import os
import sys
import time
from importlib import metadata

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import DummyVecEnv

K, N = 5, 10


class BanditTrial(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (K + 3,), np.float32)
    action_space = gym.spaces.Discrete(K)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.means, self.t = self.np_random.uniform(size=K), 0
        obs = np.zeros(K + 3, np.float32)
        obs[0] = 1.0
        return obs, {}

    def step(self, action):
        reward = float(self.np_random.uniform() < self.means[action])
        self.t += 1
        obs = np.zeros(K + 3, np.float32)
        obs[0], obs[1 + action], obs[K + 1], obs[K + 2] = 1.0, 1.0, reward, 1.0
        return obs, reward, self.t >= N, False, {}


def main():
    threads, seed, updates = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if threads != "default":
        torch.set_num_threads(int(threads))
    envs = DummyVecEnv([BanditTrial for _ in range(128)])
    envs.seed(seed)
    policy_kwargs = dict(lstm_hidden_size=128, enable_critic_lstm=True, net_arch=dict(pi=[], vf=[]))
    model = RecurrentPPO("MlpLstmPolicy", envs, n_steps=N, batch_size=320, n_epochs=8, learning_rate=3e-3,
                         gamma=0.99, gae_lambda=0.3, clip_range=0.2, ent_coef=0.0, policy_kwargs=policy_kwargs,
                         seed=seed, device="cpu")
    train_times, train = [], model.train

    def timed_train():
        t = time.perf_counter()
        train()
        train_times.append(time.perf_counter() - t)

    model.train = timed_train
    total = updates * 128 * N
    t = time.perf_counter()
    model.learn(total)
    train_s = time.perf_counter() - t
    print(json.dumps(dict(
        lib="sb3-contrib", algo="RecurrentPPO", env=f"bandit trial k={K} n={N}", seed=seed,
        threads=torch.get_num_threads(), total=int(model.num_timesteps), train_s=round(train_s, 2),
        sps=round(model.num_timesteps / train_s, 1), updates=len(train_times),
        update_s=[round(x, 4) for x in train_times], load=os.getloadavg(),
        versions={m: metadata.version(m) for m in ("sb3-contrib", "stable-baselines3", "torch", "gymnasium")})),
        flush=True)


if __name__ == "__main__":
    main()
