"""``surrogate.envs.make(id)``: one entry point, two backends.

JAX-native ids (gymnax classic control and MinAtar) run inside ``jit``/``scan``/``vmap``;
every other registered Gymnasium id (MuJoCo included) runs on the host as a
``gymnasium.vector`` env. ``make("gym:CartPole-v1")`` forces the host backend for an id
that both backends know.
"""
import difflib

from surrogate.envs.host_env import HostEnv, host_env_ids
from surrogate.envs.jax_env import JaxEnv, jax_env_ids, make_jax_env
from surrogate.errors import EnvNotFoundError

HOST_PREFIX = "gym:"


def list_envs() -> dict:
    """Environment ids by backend: ``{"jax": [...], "host": [...]}``."""
    return {"jax": jax_env_ids(), "host": host_env_ids()}


def make(env_id: str, **kwargs):
    """Build the environment ``env_id``; raises ``EnvNotFoundError`` naming close matches."""
    if env_id.startswith(HOST_PREFIX):
        host_id = env_id[len(HOST_PREFIX):]
        if host_id in host_env_ids():
            return HostEnv(host_id, dict(kwargs))
    elif env_id in jax_env_ids():
        return make_jax_env(env_id, **kwargs)
    elif env_id in host_env_ids():
        return HostEnv(env_id, dict(kwargs))
    known = jax_env_ids() + host_env_ids()
    close = difflib.get_close_matches(env_id.removeprefix(HOST_PREFIX), known, n=4, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise EnvNotFoundError(f"Unknown environment id {env_id!r}.{hint} Run `surrogate envs` to list every id.")


__all__ = ["make", "list_envs", "JaxEnv", "HostEnv", "EnvNotFoundError"]
