"""RL² (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning", arXiv
1611.02779): a GRU policy whose input is (s_t, a_{t-1}, r_{t-1}, d_{t-1}), its hidden state kept across
the episodes of a trial and reset between trials, trained by a policy-gradient method over a distribution
of tasks (sec. 3). The "slow" learner here is the runtime's recurrent PPO (``algos/recurrent_ppo.py``;
the paper used TRPO with a GRU baseline and GAE, sec. 3.3); the "fast" learner is the GRU's state.

Everything RL² needs beyond recurrent PPO is in the environment (``envs/rl2_tasks.py``): one env episode
is one trial, a new task is drawn at each trial, the observation is RL²'s input, and ``done`` comes only
at the trial's end, where the runtime zeros the GRU carries (``runtime.rollout.reset_where``). So this
module only derives the env from (task, arms, episodes), sets RL²'s defaults, and evaluates by sampling
the policy (as the paper does: its exploration is the policy's own randomness) on fresh or given tasks.

Defaults: discount 0.99 and GAE lambda 0.3 (the values reimplementations of the paper's bandit runs use),
one rollout = one trial per env (``num_steps`` 0), no observation normalisation (the inputs are one-hots, a
0/1 or Gaussian reward and a flag), returns scaled as PPO does. GRUs of 128 for actor and critic: 256 is
common in reimplementations (the paper's appendix with its sizes was not available), 128 for this 2-core
machine's compute. Measured on Bandit-k5-n10 (1 seed, 512k steps, 1000 fresh bandits, sampled): 128 trials
x 8 epochs x 4 minibatches at lr 3e-3 without entropy bonus reached 6.52; 256 trials, 4 epochs, lr 1e-3,
entropy 0.01 reached 5.25 after 100k steps and 6.10 after 512k; returns unscaled with lambda 0.95, 5.85 at 256k.
On Bandit-k10-n10, 512 trials per update for 4.1M steps reached 6.703 (2 seeds, 10,000 bandits; the exact
optimum 6.714, ``rl2.bayes_optimal``) where 128 trials for 1M steps had reached 6.59: the default is 512.
"""
from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from surrogate._jax_setup import RUN_ONCE
from surrogate.algos import actor_critic as ac
from surrogate.algos import recurrent_ppo as rp
from surrogate.envs import rl2_tasks
from surrogate.errors import ConfigError
from surrogate.runtime import parts
from surrogate.runtime.contract import Algorithm
from surrogate.runtime.devices import cached
from surrogate.runtime.iteration import spec_of
from surrogate.runtime.rollout import key_words, keys_like, policy_input


def trial_length(task: str, episodes: int) -> int:
    return episodes * (rl2_tasks.MDP_HORIZON if task == "mdp" else 1)


def env_id(task: str, arms: int, episodes: int) -> str:
    return rl2_tasks.bandit_id(arms, episodes) if task == "bandit" else rl2_tasks.mdp_id(episodes)


@dataclass(frozen=True)
class Config(rp.Config):
    """Recurrent PPO's hyperparameters with RL²'s defaults. ``task``/``arms``/``episodes`` name the task
    distribution and the trial (``arms`` is for bandits; the MDPs have the paper's 10 states and 5
    actions); ``env`` is derived from them. ``num_steps`` 0: one trial per env and rollout."""

    task: Literal["bandit", "mdp"] = "bandit"
    arms: int = 5
    episodes: int = 10
    env: str = field(default="", metadata={"help": "derived from task/arms/episodes"})
    num_envs: int = 512
    """trials collected in parallel per update (128 left RL² ~1.5% under the optimum of the n = 10 bandits;
    512 reached it: benchmarks/README.md, "RL² (issue 28)")"""
    num_steps: int = 0
    total_steps: int = 1_024_000
    num_epochs: int = 8
    num_minibatches: int = 4
    learning_rate: float = 3e-3
    gamma: float = 0.99
    gae_lambda: float = 0.3
    ent_coef: float = 0.0
    normalize_obs: bool = False
    normalize_reward: bool = True
    gru_size: int = 128

    def __post_init__(self):
        object.__setattr__(self, "env", env_id(self.task, self.arms, self.episodes))
        if self.num_steps == 0:
            object.__setattr__(self, "num_steps", trial_length(self.task, self.episodes))

    def validate(self) -> "Config":
        if self.task not in ("bandit", "mdp"):
            raise ConfigError(f"task must be 'bandit' or 'mdp', got {self.task!r}.")
        if problem := rl2_tasks.setting_problem(self.task, self.arms, self.episodes):
            raise ConfigError(f"--arms {self.arms} --episodes {self.episodes}: {problem}.")
        return rp.Config.validate(self)


PRESETS = {"bandit": Config(), "mdp": Config(task="mdp", episodes=10, total_steps=12_800_000)}
METRICS = rp.METRICS


def evaluate_tasks(config: Config, env, params, obs_stats, task, key, deterministic: bool = False):
    """Total reward of one trial per task (``rl2_tasks.Task`` with a leading axis ``[I]``: e.g. the
    baselines' draws), acting with the sampled policy (or its mode): ``[I]`` float32. Jitted once per
    (config, number of tasks)."""
    num = int(np.shape(task.reward_means)[0])
    spec = spec_of(ALGO, config, env)
    act = rp.act(config, env, deterministic)
    steps = env.max_episode_steps

    def run(params, obs_stats, task, key):
        obs, state = jax.vmap(env.env.reset_to_task)(task)
        words = key_words(key)
        bits = jax.random.bits(key, (steps, num, words + spec.act_words))
        step = jax.vmap(env.env.step_env, in_axes=(0, 0, 0, None))

        def body(carry, step_bits):
            obs, state, policy_carry, total = carry
            action, policy_carry = act(params, policy_input(spec, obs_stats, obs), policy_carry, step_bits[:, words:])
            obs, state, reward, _, _ = step(keys_like(key, step_bits[:, :words]), state, action, env.default_params)
            return (obs, state, policy_carry, total + reward), None

        init = (obs, state, rp.initial_carry(config, env, num), jnp.zeros(num))
        return jax.lax.scan(body, init, bits)[0][3]

    program = cached(("rl2_eval", config, env.id, num, deterministic),
                     lambda: jax.jit(run, compiler_options=RUN_ONCE))
    return np.asarray(program(params, obs_stats, rl2_tasks.Task(*map(jnp.asarray, task)), key))


def task_arrays(config: Config, reward_means, transitions=None) -> rl2_tasks.Task:
    """The env's ``Task`` from the baselines' arrays: bandit means ``[I, k]``, or MDP reward means
    ``[I, S, A]`` and transitions ``[I, S, A, S]``."""
    means = np.asarray(reward_means, np.float32)
    if config.task == "bandit":
        return rl2_tasks.Task(means[:, None, :], np.ones((*means.shape[:1], 1, means.shape[1], 1), np.float32))
    return rl2_tasks.Task(means, np.asarray(transitions, np.float32))


class RL2Algorithm(Algorithm):
    """Recurrent PPO's contract; ``evaluate`` samples the policy over whole trials on fresh tasks."""

    def evaluate(self, config, env, params, obs_stats, key, episodes: int = 20):
        k_task, k_run = jax.random.split(key)
        task = jax.vmap(env.env.draw_task)(jax.random.split(k_task, episodes))
        return evaluate_tasks(config, env, params, obs_stats, task, k_run)

    def baseline_report(self, config, env, result, seeds: int, num: int, seed: int = 0) -> list[str]:
        """Lines for ``surrogate eval``: each seed's mean trial total on ``num`` (at least 1000, the paper's
        count) task draws, beside Gittins' (bandits; regrets too) or the untuned MDP baselines', on the same draws."""
        totals, num = [], max(num, 1000)
        rng = np.random.default_rng(seed)
        if config.task == "bandit":
            from surrogate.rl2 import bandit_baselines as bb
            means = bb.draw_bandits(rng, num, config.arms)
            task = task_arrays(config, means)
        else:
            from surrogate.rl2 import mdp_baselines as mb
            reward_means, transitions = mb.draw_mdps(rng, num)
            task = task_arrays(config, reward_means, transitions)
        for i in range(seeds):
            params, stats = self.seed_policy(config, result, i)
            totals.append(evaluate_tasks(config, env, params, stats, task, jax.random.PRNGKey(20_000 + i)))
        n, what = config.episodes, f"{num} {'bandits' if config.task == 'bandit' else 'MDPs'} (the same draws)"
        lines = []
        if config.task == "bandit":
            gittins = bb.BANDIT_BASELINES["gittins"](means, n, np.random.default_rng(seed + 1))
            for i, t in enumerate(totals):
                lines.append(f"seed {i}: RL² total reward {t.mean():.2f}, regret {bb.regret(means, t, n).mean():.2f}")
            lines.append(f"Gittins on {what}: total reward {np.mean(gittins):.2f}, regret "
                         f"{bb.regret(means, gittins, n).mean():.2f}; RL² mean over seeds {np.mean(totals):.2f}, "
                         f"regret {np.mean([bb.regret(means, t, n).mean() for t in totals]):.2f}")
        else:
            base = mb.evaluate_mdp_baselines(reward_means, transitions, n, rl2_tasks.MDP_HORIZON, seed + 1, tune=False)
            lines += [f"seed {i}: RL² total reward {t.mean():.2f}" for i, t in enumerate(totals)]
            lines.append(f"on {what}: RL² mean over seeds {np.mean(totals):.2f}; baselines (untuned) " +
                         ", ".join(f"{k} {v[0]:.2f}" for k, v in sorted(base.items(), key=lambda kv: -kv[1][0])))
        return lines


parts.register("rl2", lambda config: rp.PARTS)
ALGO = RL2Algorithm("rl2", Config, PRESETS, METRICS, rp.init, ac.policy, rp.act, rp.learn, act_words=ac.act_words,
                    initial_carry=rp.initial_carry)
