"""JAX-native environments (gymnax), functional and jittable.

``step`` returns ``(obs, state, reward, done, info)`` with auto-reset inside; ``info``
carries ``terminated``, ``truncated`` and ``final_observation`` (the observation the
transition reached, before any reset), which GAE needs to bootstrap truncated episodes.
"""
import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from typing import Any


class _DeferredModule(types.ModuleType):
    """Stands in ``sys.modules`` for a module that is imported on its first attribute access.

    gymnax imports seaborn and pyplot at module level for rendering only; loading them eagerly is
    most of ``import gymnax``'s time (benchmarks/README.md, "Measurements behind the code"). (``importlib.util.LazyLoader`` does not help on
    Python 3.11: the import statement itself reads ``__spec__`` and so loads the module.)"""

    def __getattr__(self, attr):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def _defer(name: str) -> None:
    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        sys.modules[name] = _DeferredModule(name)


for _name in ("seaborn", "matplotlib.pyplot"):
    _defer(_name)

import gymnax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from gymnax.environments import spaces  # noqa: E402

from surrogate.envs import deep_sea  # noqa: E402


@dataclass(frozen=True, eq=False)
class JaxEnv:
    id: str
    env: Any  # gymnax environment
    default_params: Any
    backend: str = "jax"

    def reset(self, key, params=None):
        return self.env.reset(key, self.default_params if params is None else params)

    def step(self, key, state, action, params=None):
        """gymnax's ``step``: ``key`` split into the transition's key and the auto-reset's."""
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        return self.step_to(key_step, state, action, self.env.reset_env(key_reset, params), params)

    def step_to(self, key, state, action, reset, params=None):
        """``step`` with the auto-reset going to ``reset = (obs, state)``, drawn beforehand (for a whole
        rollout at once: ``reset`` of a batch of keys) instead of by a ``reset`` inside every step;
        the same transition distribution as gymnax's ``step``, two fewer threefry calls per step."""
        params = self.default_params if params is None else params
        obs_st, state_st, reward, terminated, _ = self.env.step_env(key, state, action, params)
        truncated = self.env.is_truncated(state_st, params)
        done = jnp.logical_or(terminated, truncated)
        pick = lambda reset_leaf, step_leaf: jax.lax.select(done, reset_leaf, step_leaf)
        obs, state = jax.tree.map(pick, reset[0], obs_st), jax.tree.map(pick, reset[1], state_st)
        info = {"terminated": terminated, "truncated": truncated, "final_observation": obs_st}
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
    if deep_sea.is_deep_sea(env_id):  # gymnax's DeepSea with bsuite's action mapping, its id naming its size
        return JaxEnv(*deep_sea.make(env_id, **kwargs))
    from surrogate.envs import rllab_partial  # here: it imports partial, which imports this module
    if rllab_partial.is_rllab(env_id):  # rllab's basic tasks and their partially observed variants
        return JaxEnv(*rllab_partial.make(env_id, **kwargs))
    from surrogate.envs import rllab_hierarchical
    if rllab_hierarchical.is_hierarchical(env_id):  # rllab's food collection and maze with its point robot
        return JaxEnv(*rllab_hierarchical.make(env_id, **kwargs))
    from surrogate.envs import rl2_tasks
    if rl2_tasks.is_rl2(env_id):  # RL²'s bandits and tabular MDPs, one gymnax episode per trial
        return JaxEnv(*rl2_tasks.make(env_id, **kwargs))
    env, params = gymnax.make(env_id, **kwargs)
    return JaxEnv(env_id, env, params)


def is_jax_env_id(env_id: str) -> bool:
    """A listed JAX-native id, or one of the ids that name their own setting (RL²'s ``Bandit-k<k>-n<n>-rl2``)."""
    from surrogate.envs import rl2_tasks
    return env_id in jax_env_ids() or rl2_tasks.is_rl2(env_id)


def jax_env_ids():
    from surrogate.envs import rl2_tasks, rllab_hierarchical, rllab_partial
    return (list(gymnax.registered_envs) + list(deep_sea.SIZED_IDS) + list(rllab_partial.IDS)
            + list(rllab_hierarchical.IDS) + list(rl2_tasks.IDS))
