"""DeepSea (Osband et al. 2019, "Behaviour Suite for Reinforcement Learning", bsuite's ``deep_sea``):
gymnax 1.0.1's ``DeepSea-bsuite`` with bsuite's own action mapping.

Compared line by line with ``bsuite/environments/deep_sea.py`` (google-deepmind/bsuite), gymnax's
``step_env``/``reset_env`` implement the same MDP: an N x N one-hot observation (all zeros after the
last step), start at row 0, column 0; every step goes one row down, so an episode lasts N steps (it
terminates when the row reaches N; gymnax's time limit ``max_steps_in_episode = N`` coincides);
action ``a`` is "right" where ``a == mapping[row, column]``, else "left"; right moves one column
right (clipped) and costs ``0.01 / N``, left one column left (clipped); +1 for "right" in the last
column (reachable only in the bottom row: the column never exceeds the row), so the optimal return
is 1 - 0.01 = 0.99; deterministic by default (the stochastic variant's failing right move and noisy
end rewards are gymnax's too). The one difference is the mapping's draw: gymnax draws it with
``jax.random.bernoulli(key(0))``, bsuite with ``np.random.RandomState(mapping_seed).binomial(1, 0.5,
[N, N])`` (bsuite's experiment loads ``mapping_seed=0``). ``make`` installs bsuite's, so the env is
bsuite's ``DeepSea(size, mapping_seed=0)`` cell for cell.

Ids: ``DeepSea-bsuite`` (``size`` keyword, default gymnax's 8) and ``DeepSea-bsuite-<N>`` for the
sizes in ``SIZES``; the env's id names its size, so compiled programs and run directories of
different sizes never mix.
"""
import jax.numpy as jnp
import numpy as np
from gymnax.environments.bsuite.deep_sea import DeepSea

from surrogate.errors import ConfigError

BASE_ID = "DeepSea-bsuite"
DEFAULT_SIZE = 8  # gymnax's
SIZES = (10, 20, 30, 40, 50)
SIZED_IDS = tuple(f"{BASE_ID}-{n}" for n in SIZES)


def is_deep_sea(env_id: str) -> bool:
    return env_id == BASE_ID or env_id in SIZED_IDS


def bsuite_action_mapping(size: int, mapping_seed: int = 0) -> np.ndarray:
    """bsuite's per-cell action mapping: ``mapping[row, column]`` is the action that moves right."""
    return np.random.RandomState(mapping_seed).binomial(1, 0.5, [size, size]).astype(np.int32)


def make(env_id: str, size: int | None = None, mapping_seed: int = 0, deterministic: bool = True):
    """``(id, gymnax env, params)`` of DeepSea of ``size`` (from ``DeepSea-bsuite-<N>`` or the keyword)
    with bsuite's action mapping of ``mapping_seed``; ``deterministic=False``: bsuite's stochastic
    variant. The returned id names the size (``DeepSea-bsuite-<N>``) and any non-default option."""
    if env_id != BASE_ID:
        n = int(env_id.rsplit("-", 1)[1])
        if size is not None and size != n:
            raise ConfigError(f"{env_id} has size {n}, but size={size} was given. Pass one of them.")
        size = n
    size = DEFAULT_SIZE if size is None else int(size)
    if size < 2:
        raise ConfigError(f"DeepSea needs size >= 2, got {size}.")
    env = DeepSea(size)
    env.action_mapping = jnp.asarray(bsuite_action_mapping(size, mapping_seed))
    params = env.default_params.replace(deterministic=bool(deterministic))
    name = f"{BASE_ID}-{size}" + (f"-mapping{mapping_seed}" if mapping_seed else "") + \
        ("" if deterministic else "-stochastic")
    return name, env, params
