"""sb3-contrib 2.9.2 RecurrentPPO (torch, CPU) on CartPole without velocities (observation [x, theta],
as rl-zoo3's CartPoleNoVel-v1) with rl-zoo3's ppo_lstm.yml hyperparameters for it: 8 envs, n_steps 32,
batch 256, 20 epochs, gamma 0.98, GAE 0.8, linear lr 1e-3 and clip 0.2, ent 0, observation normalisation
(VecNormalize, no reward normalisation), policy_kwargs ortho_init=False, ReLU, lstm_hidden_size=64,
enable_critic_lstm=True, net_arch pi=[64] vf=[64]. Measured for benchmarks/recurrent_cartpole.py (peers
venv); adapted from ../../../shared/peers/sb3c_recurrent_ppo.py, which left out the normalisation and the
policy_kwargs (MlpLstmPolicy's defaults are an LSTM of 256 and 64-64 tanh heads).

  sb3c_recurrent_ppo.py THREADS(int|default) SEED [TOTAL=100000] [EVAL_EVERY=10000]

Prints one JSON line. Training time is training only: every EVAL_EVERY steps a callback copies the
policy's ``state_dict`` (microseconds); after training the copies are evaluated, 20 deterministic
episodes each (as rl-zoo3 / the reference script do, with the snapshot's observation statistics
frozen), plus the final policy. ``steps_to_475`` is the
first evaluation with mean >= 475 (None if none). EVAL_EVERY 0: no evaluations (a speed run).
"""
import time

T_START = time.time()

import copy  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from importlib import metadata  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from sb3_contrib import RecurrentPPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

THRESHOLD, EPISODES = 475.0, 20


class NoVelocity(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        hi = env.observation_space.high[[0, 2]]
        self.observation_space = gym.spaces.Box(-hi, hi, dtype=np.float32)

    def observation(self, obs):
        return obs[[0, 2]].astype(np.float32)


class Snapshots(BaseCallback):
    """A copy of the policy's weights at every multiple of ``every`` steps (8 envs x 32 divides 10k)."""

    def __init__(self, every: int):
        super().__init__()
        self.every, self.next, self.snaps = every, every, []

    def _on_step(self):
        if self.every and self.num_timesteps >= self.next:
            self.next += self.every
            self.snaps.append(snapshot(self.model))
        return True


def snapshot(model):
    return (int(model.num_timesteps), {k: v.detach().clone() for k, v in model.policy.state_dict().items()},
            copy.deepcopy(model.get_vec_normalize_env().obs_rms))


def lin(v):
    return lambda progress_remaining: progress_remaining * v


def make():
    return NoVelocity(gym.make("CartPole-v1"))


def evaluate(model, state_dict, obs_rms, seed):
    model.policy.load_state_dict(state_dict)
    env = VecNormalize(make_vec_env(make, n_envs=1, seed=seed), training=False, norm_obs=True, norm_reward=False)
    env.obs_rms = obs_rms
    mean, _ = evaluate_policy(model, env, n_eval_episodes=EPISODES, deterministic=True)
    env.close()
    return float(mean)


def main():
    threads, seed = sys.argv[1], int(sys.argv[2])
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    every = int(sys.argv[4]) if len(sys.argv) > 4 else 10_000
    if threads != "default":
        torch.set_num_threads(int(threads))
    env = VecNormalize(make_vec_env(make, n_envs=8, seed=seed), norm_obs=True, norm_reward=False, gamma=0.98)
    policy_kwargs = dict(ortho_init=False, activation_fn=nn.ReLU, lstm_hidden_size=64, enable_critic_lstm=True,
                         net_arch=dict(pi=[64], vf=[64]))
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                         ent_coef=0.0, learning_rate=lin(1e-3), clip_range=lin(0.2), policy_kwargs=policy_kwargs,
                         seed=seed, device="cpu")
    cb = Snapshots(every)
    t = time.perf_counter()
    model.learn(total, callback=cb)
    train_s = time.perf_counter() - t
    load = os.getloadavg()
    final = snapshot(model)
    evals = [(steps, evaluate(model, sd, rms, 10_000 + seed)) for steps, sd, rms in cb.snaps]
    steps_to = next((s for s, m in evals if m >= THRESHOLD), None)
    final_mean = evaluate(model, *final[1:], 20_000 + seed) if every else None
    print(json.dumps(dict(
        lib="sb3-contrib", algo="RecurrentPPO", env="CartPole-v1 without velocities (CartPoleNoVel-v1)", seed=seed,
        threads=torch.get_num_threads(), total=int(model.num_timesteps), train_s=round(train_s, 2),
        sps=round(model.num_timesteps / train_s, 1), eval_every=every, evals=evals, steps_to_475=steps_to,
        final_eval_mean=final_mean, load_at_train_end=load, started_unix=T_START,
        versions={m: metadata.version(m) for m in ("sb3-contrib", "stable-baselines3", "torch", "gymnasium")})),
        flush=True)


if __name__ == "__main__":
    main()
