"""The rllab basic tasks and their partially observed variants (Duan et al. 2016, sec. 3.4), by id.

Ids: ``<Task>-rllab`` for the five tasks (``rllab_basic``, ``rllab_pendulum``) and ``<Task>-rllab-<V>`` for the
variants, each a wrapper that works over any of the five:

* ``LS`` limited sensors: only the positions are observed (rllab's ``position_only``: cart-pole [x, theta],
  mountain car [x], acrobot the sin/cos of both angles, double pendulum x and the sin/cos of both hinges), through
  ``partial.KeepObsGymnax`` with the task's ``limited_sensors``.
* ``NO`` noisy observations and delayed actions (``rllab/envs/noisy_env.py``: ``NoisyObservationEnv(obs_noise=0.1)``
  and ``DelayedActionEnv(action_delay=3)``): Gaussian noise of std 0.1 on every observation entry (the reset's
  too), and the action applied at step t is the one given at step t - 3 (zeros for the first three steps of each
  episode); the queue lives in the env state and a reset empties it.
* ``SI`` system identification (``rllab/envs/identification_env.py``, which rebuilds the model from its
  ``noise=True`` template at every reset): the task's ``system_id_ranges`` (cart-pole pole length U[0.5, 1.5],
  mountain-car track width 4 + U(-1, 1), acrobot link length U[0.5, 1.5], double-pendulum poles 0.6 + U(-0.1, 0.4)
  each) drawn at every reset, kept in the env state, and used by every step of the episode.

The variants default to a 100-step horizon, the paper's for them ("horizon 100, 300 iterations"); the tasks to 500.
``make(id, max_steps_in_episode=N)`` changes it (the id then names it). All resets, including the auto-reset that
``JaxEnv.step_to`` draws with ``reset_env``, go through the wrappers' ``reset_env``.
"""
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from surrogate.envs.partial import KeepObsGymnax
from surrogate.envs.rllab_basic import AcrobotSwingUp, CartPoleBalancing, CartPoleSwingUp, MountainCar
from surrogate.envs.rllab_pendulum import DoubleInvertedPendulum
from surrogate.errors import ConfigError

TASKS = {cls.env_id: cls for cls in (CartPoleBalancing, CartPoleSwingUp, MountainCar, AcrobotSwingUp,
                                     DoubleInvertedPendulum)}
VARIANTS = ("LS", "NO", "SI")
HORIZON, VARIANT_HORIZON = 500, 100
IDS = tuple(TASKS) + tuple(f"{task}-{v}" for task in TASKS for v in VARIANTS)


class Wrapper(environment.Environment):
    """A gymnax env around ``env``: spaces, params, name and the time limit pass through."""

    def __init__(self, env, name: str):
        self._env, self._name = env, name

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    @property
    def default_params(self):
        return self._env.default_params

    def action_space(self, params=None):
        return self._env.action_space(params)

    def observation_space(self, params=None):
        return self._env.observation_space(params)

    def is_truncated(self, state, params):
        return self._env.is_truncated(state.inner, params)

    def is_terminated(self, state, params):
        return self._env.is_terminated(state.inner, params)


@struct.dataclass
class DelayedState:
    inner: Any
    queue: jax.Array  # [delay, action_dim] actions given and not yet applied, oldest first


class NoisyDelayed(Wrapper):
    """``-NO``: observations plus N(0, ``noise_std``^2) noise; each action applied ``delay`` steps after it is given."""

    def __init__(self, env, name: str, noise_std: float = 0.1, delay: int = 3):
        super().__init__(env, name)
        self.noise_std, self.delay = noise_std, delay
        self._action_shape = tuple(env.action_space(env.default_params).shape)

    def _noisy(self, key, obs):
        return obs + self.noise_std * jax.random.normal(key, obs.shape, obs.dtype)

    def reset_env(self, key, params):
        key_reset, key_noise = jax.random.split(key)
        obs, inner = self._env.reset_env(key_reset, params)
        return self._noisy(key_noise, obs), DelayedState(inner, jnp.zeros((self.delay, *self._action_shape)))

    def step_env(self, key, state, action, params):
        key_step, key_noise = jax.random.split(key)
        obs, inner, reward, terminated, info = self._env.step_env(key_step, state.inner, state.queue[0], params)
        given = jnp.reshape(jnp.asarray(action, jnp.float32), self._action_shape)
        queue = jnp.concatenate([state.queue[1:], given[None]])
        return self._noisy(key_noise, obs), DelayedState(inner, queue), reward, terminated, info


@struct.dataclass
class IdentifiedState:
    inner: Any
    physics: dict  # the params fields drawn at this episode's reset


class SystemIdentification(Wrapper):
    """``-SI``: the task's ``system_id_ranges`` drawn uniformly at each reset and used for the whole episode."""

    def __init__(self, env, name: str):
        super().__init__(env, name)
        self.ranges = dict(env.system_id_ranges)

    def draw(self, key) -> dict:
        keys = jax.random.split(key, len(self.ranges))
        return {field: jax.random.uniform(k, (), jnp.float32, low, high)
                for k, (field, (low, high)) in zip(keys, self.ranges.items())}

    def reset_env(self, key, params):
        key_draw, key_reset = jax.random.split(key)
        physics = self.draw(key_draw)
        obs, inner = self._env.reset_env(key_reset, params.replace(**physics))
        return obs, IdentifiedState(inner, physics)

    def step_env(self, key, state, action, params):
        obs, inner, reward, terminated, info = self._env.step_env(key, state.inner, action,
                                                                  params.replace(**state.physics))
        return obs, IdentifiedState(inner, state.physics), reward, terminated, info


def variant(env, name: str, variant_name: str):
    """``env`` (one of the five tasks) wrapped as the partially observed variant ``variant_name``."""
    if variant_name == "LS":
        return KeepObsGymnax(env, env.limited_sensors)
    if variant_name == "NO":
        return NoisyDelayed(env, name)
    if variant_name == "SI":
        return SystemIdentification(env, name)
    raise ConfigError(f"Unknown rllab variant {variant_name!r}: use one of {', '.join(VARIANTS)} "
                      "(limited sensors, noisy observations + delayed actions, system identification).")


def is_rllab(env_id: str) -> bool:
    return env_id in IDS


def make(env_id: str, max_steps_in_episode: int | None = None):
    """``(id, gymnax env, params)`` for an rllab task or variant id; ``max_steps_in_episode`` overrides the horizon
    (500 for the tasks, 100 for the variants) and is then named in the returned id."""
    task_id, _, variant_name = env_id.partition("-rllab")
    task_id, variant_name = task_id + "-rllab", variant_name.removeprefix("-")
    if task_id not in TASKS:
        raise ConfigError(f"Unknown rllab task {env_id!r}: use one of {', '.join(IDS)}.")
    env = TASKS[task_id]()
    default = VARIANT_HORIZON if variant_name else HORIZON
    horizon = default if max_steps_in_episode is None else int(max_steps_in_episode)
    if horizon < 1:
        raise ConfigError(f"max_steps_in_episode must be >= 1, got {max_steps_in_episode!r}.")
    name = env_id if horizon == default else f"{env_id}[max_steps={horizon}]"
    if variant_name:
        env = variant(env, name, variant_name)
    return name, env, env.default_params.replace(max_steps_in_episode=horizon)
