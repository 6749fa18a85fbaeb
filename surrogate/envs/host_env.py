"""Host environments: any Gymnasium id (MuJoCo included), run as ``gymnasium.vector`` envs.

Vector envs use same-step auto-reset, so as on the JAX backend the observation
returned at an episode end is the reset one and ``info["final_obs"]`` holds the
observation the transition really reached.
"""
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


@dataclass(frozen=True, eq=False)
class HostEnv:
    id: str
    kwargs: dict = field(default_factory=dict)
    backend: str = "host"

    def vector(self, num_envs: int, seed: int):
        """A ``SyncVectorEnv`` of ``num_envs`` copies with same-step auto-reset, reset with ``seed``."""
        venv = gym.make_vec(
            self.id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            **self.kwargs,
        )
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
