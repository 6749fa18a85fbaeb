"""Stable-Baselines3 2.9.2 PPO (torch, CPU) on Gymnasium CartPole-v1 with the rl-zoo3 hyperparameters,
measured for benchmarks/ppo_cartpole.py (peers venv). Adapted from ../../../shared/peers/sb3_ppo.py.

  sb3_ppo.py --seeds 0 2 4 --total 100000 --threads 1 [--snapshot-every 10000]

Trains the given seeds one after another in this process (a fresh model and vector env per seed)
and prints one JSON line. ``train_done_unix`` is the wall-clock time at which the last seed
finished training; only after it, if ``--snapshot-every`` is set, are the policy snapshots taken
at every multiple of that many steps evaluated (20 deterministic episodes each, as rl-zoo /
the reference script do), stopping at the first with mean >= 475, plus the final policy. Taking a
snapshot is a copy of the small policy ``state_dict`` (microseconds), so the training time is
pure training either way.
"""
import time

T_START = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from importlib import metadata  # noqa: E402

import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402

ENV = "CartPole-v1"


def lin(v):
    return lambda progress_remaining: progress_remaining * v


# rl-zoo3 hyperparams/ppo.yml, CartPole-v1
ZOO = dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
           learning_rate=lin(1e-3), clip_range=lin(0.2))
N_ENVS = 8


class Snapshots(BaseCallback):
    def __init__(self, every: int):
        super().__init__()
        self.every, self.next, self.snaps = every, every, []

    def _on_step(self):
        if self.num_timesteps >= self.next:
            self.next += self.every
            self.snaps.append((self.num_timesteps,
                               {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}))
        return True


def evaluate(model, state_dict, seed, episodes):
    model.policy.load_state_dict(state_dict)
    env = make_vec_env(ENV, n_envs=1, seed=seed)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)
    env.close()
    return float(mean)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--total", type=int, default=100_000)
    p.add_argument("--threads", default="1", help="torch threads: an int or 'default'")
    p.add_argument("--snapshot-every", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--threshold", type=float, default=475.0)
    a = p.parse_args()
    if a.threads != "default":
        torch.set_num_threads(int(a.threads))
    runs, models = [], []
    for seed in a.seeds:
        venv = make_vec_env(ENV, n_envs=N_ENVS, seed=seed)
        model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **ZOO)
        cb = Snapshots(a.snapshot_every) if a.snapshot_every else None
        t = time.perf_counter()
        model.learn(a.total, callback=cb)
        train_s = time.perf_counter() - t
        runs.append(dict(seed=seed, steps=int(model.num_timesteps), train_s=train_s, sps=model.num_timesteps / train_s))
        models.append((model, cb))
    train_done = time.time()
    if a.snapshot_every:
        for run, (model, cb) in zip(runs, models):
            final = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
            evals = []
            for steps, sd in cb.snaps:
                evals.append((steps, evaluate(model, sd, 10_000 + run["seed"], a.eval_episodes)))
                if evals[-1][1] >= a.threshold:
                    break
            run["evals"] = evals
            run["first_step_ge_threshold"] = next((s for s, m in evals if m >= a.threshold), None)
            run["final_eval_mean"] = evaluate(model, final, 20_000 + run["seed"], a.eval_episodes)
    print(json.dumps(dict(lib="sb3", started_unix=T_START, train_done_unix=train_done, runs=runs,
                          versions={m: metadata.version(m) for m in ("stable-baselines3", "torch", "gymnasium")},
                          torch_threads=torch.get_num_threads(), load=os.getloadavg())),
          flush=True)


if __name__ == "__main__":
    main()
