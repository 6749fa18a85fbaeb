"""The registry: one ``surrogate.runtime.Algorithm`` per name, each defined in its own module as ``ALGO``
(``"module:NAME"``: the module's ``NAME``, for a module that defines several)."""
import importlib

from surrogate.errors import ConfigError

ALGOS = {"ppo": "surrogate.algos.ppo", "trpo": "surrogate.algos.trpo", "tnpg": "surrogate.algos.tnpg",
         "vpg": "surrogate.algos.vpg", "dqn": "surrogate.algos.dqn", "soft_dqn": "surrogate.algos.soft_dqn",
         "cem": "surrogate.algos.cem", "recurrent_ppo": "surrogate.algos.recurrent_ppo",
         "soft_q": "surrogate.algos.soft_q", "a2c": "surrogate.algos.a2c",
         "bootstrapped_dqn": "surrogate.algos.q_ensemble:BOOTSTRAPPED", "ensemble_ucb": "surrogate.algos.q_ensemble:UCB",
         "ensemble_voting": "surrogate.algos.q_ensemble:VOTING", "ddpg": "surrogate.algos.ddpg",
         "cmaes": "surrogate.algos.cmaes", "rwr": "surrogate.algos.rwr", "reps": "surrogate.algos.reps",
         "recurrent_trpo": "surrogate.algos.recurrent_trpo:TRPO", "recurrent_tnpg": "surrogate.algos.recurrent_trpo:TNPG",
         "recurrent_vpg": "surrogate.algos.recurrent_trpo:VPG", "rl2": "surrogate.algos.rl2"}


def get(name: str):
    """The ``Algorithm`` registered as ``name``; ``ConfigError`` naming the available ones otherwise."""
    if name not in ALGOS:
        raise ConfigError(f"Unknown algorithm {name!r}. Available: {', '.join(sorted(ALGOS))}. "
                          f"Run `surrogate algos` to list them.")
    module, _, attr = ALGOS[name].partition(":")
    return getattr(importlib.import_module(module), attr or "ALGO")
