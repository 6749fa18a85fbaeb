"""RL²'s task distributions (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement
Learning", sec. 3 and 4.1-4.2) as gymnax environments whose one episode is one RL² *trial*.

A trial draws a task (``reset``) and runs ``n`` inner episodes of it; the env reports ``done`` only at the
trial's end. So the runtime's reset of a recurrent carry at ``done`` (``runtime.rollout.reset_where``) is
RL²'s "the hidden state is reset between trials", and nothing resets it between the inner episodes of a
trial, where RL² keeps it (sec. 3.2, Figure 1).

Tasks, as the paper draws them (sec. 4.1, 4.2):

* multi-armed bandits: ``k`` Bernoulli arms with means ~ Uniform[0, 1]; an inner episode is one pull;
* tabular MDPs: 10 states, 5 actions, rewards Gaussian with unit variance and means ~ N(1, 1), transitions
  ~ flat Dirichlet (all concentrations 1), inner episodes of 10 steps, each starting in the first state.

A bandit is the one-state case of the MDP (horizon 1, Bernoulli rewards), so one class serves both.
The observation at step t is RL²'s input (sec. 3.2): ``concat(one-hot s_t, one-hot a_{t-1}, r_{t-1},
d_{t-1})`` with ``d`` the inner-episode termination flag (all zero before the trial's first step; for a
bandit the state one-hot is the constant 1). The trial's undiscounted return is the paper's table entry:
the total reward over the ``n`` episodes.

Ids name the setting, so compiled programs and run directories never mix: ``Bandit-k<k>-n<n>-rl2`` (any
``k >= 2`` arms, ``n >= 1`` pulls) and ``TabularMDP-n<n>-rl2`` (``n >= 1`` episodes); ``IDS`` lists the
paper's grids (``BANDIT_ARMS`` x ``BANDIT_EPISODES`` and ``MDP_EPISODES``), which ``surrogate envs`` shows.
Evaluation on given tasks (the baselines' draws): ``reset_to_task``.
"""
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from surrogate.errors import ConfigError

MDP_STATES, MDP_ACTIONS, MDP_HORIZON = 10, 5, 10
BANDIT_ARMS = (2, 5, 10, 50)
BANDIT_EPISODES = (5, 10, 100, 500)
MDP_EPISODES = (5, 10, 25, 50, 75, 100)
_BANDIT = re.compile(r"^Bandit-k(\d+)-n(\d+)-rl2$")
_MDP = re.compile(r"^TabularMDP-n(\d+)-rl2$")


def bandit_id(arms: int, episodes: int) -> str:
    return f"Bandit-k{arms}-n{episodes}-rl2"


def mdp_id(episodes: int) -> str:
    return f"TabularMDP-n{episodes}-rl2"


IDS = tuple([bandit_id(k, n) for k in BANDIT_ARMS for n in BANDIT_EPISODES] + [mdp_id(n) for n in MDP_EPISODES])


def is_rl2(env_id: str) -> bool:
    return bool(_BANDIT.match(env_id) or _MDP.match(env_id))


def setting_problem(task: str, arms: int, episodes: int) -> str | None:
    """Why a bandit of ``arms`` arms (or an MDP) with ``episodes`` inner episodes is no RL² setting, or None."""
    if task == "bandit" and arms < 2:
        return f"a bandit needs at least 2 arms, got {arms}"
    if episodes < 1:
        return f"a trial needs at least 1 episode, got {episodes}"
    return None


class Task(NamedTuple):
    """One task: reward means ``[S, A]`` (bandit: arm probabilities, ``S = 1``), transitions ``[S, A, S]``."""

    reward_means: jax.Array
    transitions: jax.Array


@struct.dataclass
class TrialParams(environment.EnvParams):
    max_steps_in_episode: int = 10  # the trial's length: episodes x horizon


@struct.dataclass
class TrialState(environment.EnvState):
    task: Task
    state: jax.Array  # int32 current state within the inner episode
    prev_action: jax.Array  # int32, -1 before the trial's first step
    prev_reward: jax.Array
    prev_done: jax.Array  # float32 inner-episode termination flag of the previous step


class RL2Trial(environment.Environment):
    """One trial of ``episodes`` inner episodes of ``horizon`` steps on a task of ``num_states`` states and
    ``num_actions`` actions. ``bernoulli``: Bernoulli rewards with the task's means (bandits), else
    Gaussian with unit variance (MDPs)."""

    def __init__(self, env_id: str, num_states: int, num_actions: int, horizon: int, episodes: int, bernoulli: bool):
        super().__init__()
        self.env_id, self.num_states, self.actions = env_id, num_states, num_actions
        self.horizon, self.episodes, self.bernoulli = horizon, episodes, bernoulli

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def num_actions(self) -> int:
        return self.actions

    @property
    def default_params(self) -> TrialParams:
        return TrialParams(max_steps_in_episode=self.episodes * self.horizon)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.actions)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self.num_states + self.actions + 2,), jnp.float32)

    def draw_task(self, key) -> Task:
        """Bandit: arm means ~ U[0, 1] (sec. 4.1). MDP: reward means ~ N(1, 1), transitions ~ Dirichlet(1) (sec. 4.2),
        drawn as normalised Exponential(1) variates (``jax.random.dirichlet``'s rejection-sampled gammas made a
        rollout's pre-drawn resets ~90% of an MDP update's time: 35 s per update of 128 trials)."""
        S, A = self.num_states, self.actions
        k_r, k_p = jax.random.split(key)
        if self.bernoulli:
            return Task(jax.random.uniform(k_r, (S, A)), jnp.ones((S, A, S)))
        weights = jax.random.exponential(k_p, (S, A, S))  # Gamma(1) draws normalised: flat Dirichlet, exactly
        return Task(1.0 + jax.random.normal(k_r, (S, A)), weights / weights.sum(-1, keepdims=True))

    def reset_to_task(self, task: Task):
        """``(obs, state)`` at the start of a trial of ``task`` (no previous action, reward or flag)."""
        task = Task(jnp.asarray(task.reward_means, jnp.float32), jnp.asarray(task.transitions, jnp.float32))
        state = TrialState(time=jnp.int32(0), task=task, state=jnp.int32(0), prev_action=jnp.int32(-1),
                           prev_reward=jnp.float32(0.0), prev_done=jnp.float32(0.0))
        return self.get_obs(state), state

    def reset_env(self, key, params):
        return self.reset_to_task(self.draw_task(key))

    def get_obs(self, state: TrialState, params=None, key=None):
        return jnp.concatenate([jax.nn.one_hot(state.state, self.num_states),
                                jax.nn.one_hot(state.prev_action, self.actions),  # all zeros for -1
                                state.prev_reward[None], state.prev_done[None]]).astype(jnp.float32)

    def step_env(self, key, state: TrialState, action, params):
        """One step: reward ~ Bernoulli / N(mean[s, a], 1), next state ~ transitions[s, a]; at an inner
        episode's end the next state is the first one; ``done`` at the trial's end only."""
        k_r, k_s = jax.random.split(key)
        action = jnp.asarray(action, jnp.int32).reshape(())
        mean = state.task.reward_means[state.state, action]
        reward = (jax.random.uniform(k_r) < mean).astype(jnp.float32) if self.bernoulli else \
            mean + jax.random.normal(k_r)
        time = state.time + 1
        inner_done = time % self.horizon == 0
        s_next = jax.random.categorical(k_s, jnp.log(state.task.transitions[state.state, action]))
        s_next = jnp.where(inner_done, 0, s_next).astype(jnp.int32)
        state = state.replace(time=time, state=s_next, prev_action=action, prev_reward=reward.astype(jnp.float32),
                              prev_done=inner_done.astype(jnp.float32))
        done = time >= self.episodes * self.horizon
        return self.get_obs(state), state, reward.astype(jnp.float32), done, {}


def make(env_id: str, **kwargs):
    """``(id, gymnax env, params)`` for an RL² id (module docstring)."""
    if kwargs:
        raise ConfigError(f"{env_id} takes no keyword options (the id names the setting); got {sorted(kwargs)}.")
    bandit, mdp = _BANDIT.match(env_id), _MDP.match(env_id)
    if not (bandit or mdp):
        raise ConfigError(f"Unknown RL² id {env_id!r}: use Bandit-k<arms>-n<pulls>-rl2 or TabularMDP-n<episodes>-rl2, "
                          f"e.g. {IDS[0]}.")
    arms, episodes = (int(bandit[1]), int(bandit[2])) if bandit else (MDP_ACTIONS, int(mdp[1]))
    if problem := setting_problem("bandit" if bandit else "mdp", arms, episodes):
        raise ConfigError(f"{env_id}: {problem}.")
    if bandit:
        env = RL2Trial(env_id, 1, arms, 1, episodes, bernoulli=True)
    else:
        env = RL2Trial(env_id, MDP_STATES, MDP_ACTIONS, MDP_HORIZON, episodes, bernoulli=False)
    return env_id, env, env.default_params
