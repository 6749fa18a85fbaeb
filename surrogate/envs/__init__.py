"""``surrogate.envs.make(id)``: one entry point, two backends.

JAX-native ids (gymnax classic control and MinAtar; rllab's basic tasks ``<Task>-rllab`` and their
``-LS``/``-NO``/``-SI`` variants, see ``surrogate.envs.rllab_partial``; its hierarchical tasks with the point robot,
``PointGather-rllab`` and ``PointMaze-rllab``, see ``surrogate.envs.rllab_hierarchical``) run inside
``jit``/``scan``/``vmap``; the Swimmer and Ant versions (``SwimmerGather-rllab``, ``AntMaze-rllab``, ...,
``surrogate.envs.rllab_hierarchical_mujoco``) are registered with Gymnasium here and run on the host;
every other registered Gymnasium id (MuJoCo included) runs on the host as a
``gymnasium.vector`` env; ``ALE/<Game>-v5`` ids get the standard Atari preprocessing
(``surrogate.envs.atari``). ``make("gym:CartPole-v1")`` forces the host backend for an id
that both backends know. Partially observed variants: ``make("CartPoleNoVel-v1")`` (see
``surrogate.envs.partial``), or ``make(id, keep_obs=(0, 2))`` for any vector-observation env.
"""
import difflib

from surrogate.envs.atari import AtariEnv, atari_env_ids
from surrogate.envs.host_env import HostEnv, host_env_ids
from surrogate.envs.jax_env import JaxEnv, is_jax_env_id, jax_env_ids, make_jax_env
from surrogate.envs.partial import NO_VELOCITY, NO_VELOCITY_IDS, keep_observations
from surrogate.envs import rllab_hierarchical_mujoco  # noqa: F401  (registers its Gymnasium ids)
from surrogate.errors import EnvNotFoundError

HOST_PREFIX = "gym:"


def list_envs() -> dict:
    """Environment ids by backend: ``{"jax": [...], "host": [...]}``."""
    jax_ids, host_ids = jax_env_ids(), host_env_ids()
    partial = lambda base_ids: [p for p, base in NO_VELOCITY_IDS.items() if base in base_ids]
    return {"jax": jax_ids + partial(jax_ids), "host": sorted(host_ids + partial(host_ids))}


def make(env_id: str, keep_obs=None, **kwargs):
    """Build the environment ``env_id``; raises ``EnvNotFoundError`` naming close matches.

    ``keep_obs``: observation indices to keep (``ConfigError`` if invalid); ``<Base>NoVel-vN`` ids
    keep ``NO_VELOCITY[base]`` of the base env on the same backend."""
    prefix = HOST_PREFIX if env_id.startswith(HOST_PREFIX) else ""
    name = env_id.removeprefix(prefix)
    if name in NO_VELOCITY_IDS:
        base = NO_VELOCITY_IDS[name]
        env = keep_observations(_make(prefix + base, **kwargs), NO_VELOCITY[base], name)
    else:
        env = _make(env_id, **kwargs)
    return env if keep_obs is None else keep_observations(env, keep_obs)


def _make(env_id: str, **kwargs):
    if env_id.startswith(HOST_PREFIX):
        host_id = env_id[len(HOST_PREFIX):]
        if host_id in host_env_ids():
            return HostEnv(host_id, dict(kwargs))
    elif is_jax_env_id(env_id):
        return make_jax_env(env_id, **kwargs)
    elif env_id in atari_env_ids():
        return AtariEnv(env_id, dict(kwargs))
    elif env_id in host_env_ids():
        return HostEnv(env_id, dict(kwargs))
    known = list(dict.fromkeys(jax_env_ids() + host_env_ids() + list(NO_VELOCITY_IDS)))
    close = difflib.get_close_matches(env_id.removeprefix(HOST_PREFIX), known, n=4, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise EnvNotFoundError(f"Unknown environment id {env_id!r}.{hint} Run `surrogate envs` to list every id.")


__all__ = ["make", "list_envs", "JaxEnv", "HostEnv", "AtariEnv", "EnvNotFoundError"]
