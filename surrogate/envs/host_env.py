"""Host environments: any Gymnasium id (MuJoCo included), stepped as a vector of envs.

``HostVectorEnv`` follows ``gymnasium.vector.SyncVectorEnv`` with same-step auto-reset (the
observation returned at an episode end is the reset one, and the one the transition reached
is returned beside it), without its per-step bookkeeping, which alone would cap a learner near 80%
of the raw environment rate on Hopper-v5 (benchmarks/README.md, "Measurements behind the code").
"""
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


@dataclass(frozen=True, eq=False)
class HostEnv:
    id: str
    kwargs: dict = field(default_factory=dict)
    backend: str = "host"

    def vector(self, num_envs: int, seed: int) -> "HostVectorEnv":
        """``num_envs`` copies with same-step auto-reset, reset with seeds ``seed, seed + 1, ...``."""
        venv = HostVectorEnv([gym.make(self.id, **self.kwargs) for _ in range(num_envs)])
        venv.reset(seed=seed)
        return venv

    def _single(self):
        if not hasattr(self, "_spec_env"):
            env = gym.make(self.id, **self.kwargs)
            object.__setattr__(self, "_spec_env", (env.observation_space, env.action_space, env.spec))
            env.close()
        return self._spec_env

    def observation_space(self, params=None):
        return self._single()[0]

    def action_space(self, params=None):
        return self._single()[1]

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space(), gym.spaces.Discrete)

    @property
    def action_dim(self) -> int:
        space = self.action_space()
        return int(space.n) if self.discrete else int(np.prod(space.shape))

    @property
    def action_bounds(self):
        space = self.action_space()
        return None if self.discrete else (space.low.astype(np.float32), space.high.astype(np.float32))

    @property
    def obs_shape(self):
        return tuple(self.observation_space().shape)

    @property
    def max_episode_steps(self) -> int:
        spec = self._single()[2]
        return int(spec.max_episode_steps or 1000) if spec else 1000


def host_env_ids():
    return sorted(k for k in gym.registry.keys() if not k.startswith(("phys2d/", "tabular/")))


class HostVectorEnv:
    """Gymnasium envs stepped in a Python loop with same-step auto-reset.

    ``step(actions) -> (obs, reward, terminated, truncated, final_obs)`` where ``final_obs[i]``
    is the observation env ``i`` reached (before its reset when it finished) and ``obs[i]``
    the one to act on next.
    """

    def __init__(self, envs):
        self.envs = envs
        self.num_envs = len(envs)
        self.obs = None

    def reset(self, seed: int | None = None):
        obs = [e.reset(seed=None if seed is None else seed + i)[0] for i, e in enumerate(self.envs)]
        self.obs = np.stack(obs).astype(np.float32)
        return self.obs.copy(), {}

    def step(self, actions):
        """Arrays returned are fresh each call (callers may keep them)."""
        n = self.num_envs
        obs, final_obs = np.empty_like(self.obs), np.empty_like(self.obs)
        reward, term, trunc = np.empty(n, np.float32), np.empty(n, bool), np.empty(n, bool)
        self.step_into(actions, obs, final_obs, reward, term, trunc)
        return obs, reward, term, trunc, final_obs

    def step_into(self, actions, obs, final_obs, reward, term, trunc):
        """``step`` writing into the caller's arrays (rows of its rollout buffers): no allocation."""
        for i, env in enumerate(self.envs):
            o, r, te, tr, _ = env.step(actions[i])
            final_obs[i], reward[i], term[i], trunc[i] = o, r, te, tr
            obs[i] = env.reset()[0] if te or tr else o
        self.obs = obs

    def close(self):
        for e in self.envs:
            e.close()
