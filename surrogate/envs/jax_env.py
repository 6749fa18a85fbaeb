"""JAX-native environments (gymnax), functional and jittable.

``step`` returns ``(obs, state, reward, done, info)`` with auto-reset inside; ``info``
carries ``terminated``, ``truncated`` and ``final_observation`` (the observation the
transition reached, before any reset), which GAE needs to bootstrap truncated episodes.
"""
from dataclasses import dataclass
from typing import Any

import gymnax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces


@dataclass(frozen=True, eq=False)
class JaxEnv:
    id: str
    env: Any  # gymnax environment
    default_params: Any
    backend: str = "jax"

    def reset(self, key, params=None):
        return self.env.reset(key, self.default_params if params is None else params)

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        done = jnp.logical_or(terminated, truncated)
        info = {"terminated": terminated, "truncated": truncated, "final_observation": info["final_observation"]}
        return obs, state, reward.astype(jnp.float32), done, info

    def observation_space(self, params=None):
        return self.env.observation_space(self.default_params if params is None else params)

    def action_space(self, params=None):
        return self.env.action_space(self.default_params if params is None else params)

    # Shape facts every learner needs, in one place.
    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space(), spaces.Discrete)

    @property
    def action_dim(self) -> int:
        space = self.action_space()
        return int(space.n) if self.discrete else int(np.prod(space.shape))

    @property
    def action_bounds(self):
        space = self.action_space()
        return (float(np.min(space.low)), float(np.max(space.high))) if not self.discrete else None

    @property
    def obs_shape(self):
        return tuple(self.observation_space().shape)

    @property
    def max_episode_steps(self) -> int:
        return int(getattr(self.default_params, "max_steps_in_episode", 1000))


def make_jax_env(env_id: str, **kwargs) -> JaxEnv:
    env, params = gymnax.make(env_id, **kwargs)
    return JaxEnv(env_id, env, params)


def jax_env_ids():
    return list(gymnax.registered_envs)
