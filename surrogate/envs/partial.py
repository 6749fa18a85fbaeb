"""Partially observed environments: keep only some entries of a vector observation.

The "limited sensors" variant of the rllab benchmark (Duan et al. 2016, sec. 3.4: only
positions are observed, velocities must be inferred from history) and rl-zoo3's
``CartPoleNoVel-v1`` family. ``NO_VELOCITY`` gives, for each base id, the observation
indices that are positions (the same layout in gymnax and Gymnasium):

* CartPole: ``[x, x_dot, theta, theta_dot]`` -> ``[x, theta]``
* Pendulum: ``[cos th, sin th, th_dot]`` -> ``[cos th, sin th]``
* MountainCar(Continuous): ``[position, velocity]`` -> ``[position]``
* Acrobot: ``[cos th1, sin th1, cos th2, sin th2, th1_dot, th2_dot]`` -> the four angle terms

``keep_observations(env, indices)`` does the same for any env with a 1-D Box observation:
the JAX backend wraps the gymnax env inside a ``JaxEnv`` (so ``reset``, ``step``, ``step_to``
and its ``info["final_observation"]`` all see the subset); the host backend applies a
Gymnasium ``ObservationWrapper`` to every env ``vector`` builds.
"""
from dataclasses import dataclass

import gymnasium as gym
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from surrogate.envs.host_env import HostEnv, HostVectorEnv
from surrogate.envs.jax_env import JaxEnv
from surrogate.errors import ConfigError

NO_VELOCITY = {"CartPole-v1": (0, 2), "Pendulum-v1": (0, 1), "MountainCar-v0": (0,),
               "MountainCarContinuous-v0": (0,), "Acrobot-v1": (0, 1, 2, 3)}


def no_velocity_id(base_id: str) -> str:
    """rl-zoo3's naming: ``CartPole-v1`` -> ``CartPoleNoVel-v1``."""
    name, version = base_id.rsplit("-v", 1)
    return f"{name}NoVel-v{version}"


NO_VELOCITY_IDS = {no_velocity_id(base): base for base in NO_VELOCITY}  # partial id -> base id


def _check_indices(env_id: str, space_shape, indices) -> tuple:
    shape = tuple(space_shape or ())
    if len(shape) != 1:
        raise ConfigError(f"keep_obs needs a vector observation; {env_id!r} has observations of shape {shape}.")
    try:
        idx = tuple(indices)
    except TypeError:
        idx = (indices,)
    bad = [i for i in idx if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer))
           or not 0 <= i < shape[0]]
    if not idx or bad or len(set(idx)) != len(idx):
        raise ConfigError(f"keep_obs={indices!r} is not valid for {env_id!r}: give distinct integer indices "
                          f"in 0..{shape[0] - 1} (its observation has {shape[0]} entries).")
    return tuple(int(i) for i in idx)


class KeepObsGymnax:
    """A gymnax environment whose observations are ``obs[indices]`` (other attributes pass through)."""

    def __init__(self, env, indices):
        self._env, self.indices = env, tuple(indices)
        self._idx = np.asarray(self.indices)

    def __getattr__(self, name):
        if name == "_env":  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self._env, name)

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return obs[self._idx], state

    def reset_env(self, key, params):
        obs, state = self._env.reset_env(key, params)
        return obs[self._idx], state

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = self._env.step_env(key, state, action, params)
        return obs[self._idx], state, reward, terminated, info

    def observation_space(self, params):
        space = self._env.observation_space(params)
        low, high = (jnp.broadcast_to(jnp.asarray(b), space.shape)[self._idx] for b in (space.low, space.high))
        return spaces.Box(low, high, (len(self.indices),), space.dtype)


class KeepObs(gym.ObservationWrapper):
    """A Gymnasium env whose observations are ``obs[indices]``, with the matching ``Box`` space."""

    def __init__(self, env, indices):
        super().__init__(env)
        self._idx = np.asarray(indices)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low[self._idx], space.high[self._idx], dtype=space.dtype)

    def observation(self, observation):
        return observation[self._idx]


@dataclass(frozen=True, eq=False)
class PartialHostEnv(HostEnv):
    """``HostEnv`` of ``base_id`` whose envs are wrapped in ``KeepObs(keep_obs)``; ``id`` names the result."""

    base_id: str = ""
    keep_obs: tuple = ()

    def _make_one(self):
        return KeepObs(gym.make(self.base_id, **self.kwargs), self.keep_obs)

    def vector(self, num_envs: int, seed: int) -> HostVectorEnv:
        venv = HostVectorEnv([self._make_one() for _ in range(num_envs)])
        venv.reset(seed=seed)
        return venv

    def _single(self):
        if not hasattr(self, "_spec_env"):
            env = self._make_one()
            object.__setattr__(self, "_spec_env", (env.observation_space, env.action_space, env.spec))
            env.close()
        return self._spec_env


def keep_observations(env, indices, env_id: str | None = None):
    """``env`` (a ``JaxEnv`` or ``HostEnv``) observing only ``obs[indices]``.

    The result's ``id`` is ``env_id``, by default ``"<id>[keep_obs=i,j]"`` (ids key compile caches,
    so different subsets must not share one). Raises ``ConfigError`` for bad indices or a
    non-vector observation."""
    idx = _check_indices(env.id, env.obs_shape, indices)
    env_id = env_id or f"{env.id}[keep_obs={','.join(map(str, idx))}]"
    if env.backend == "jax":
        return JaxEnv(env_id, KeepObsGymnax(env.env, idx), env.default_params)
    base_id = env.base_id if isinstance(env, PartialHostEnv) else env.id
    keep = tuple(env.keep_obs[i] for i in idx) if isinstance(env, PartialHostEnv) else idx
    return PartialHostEnv(env_id, dict(env.kwargs), base_id=base_id, keep_obs=keep)
