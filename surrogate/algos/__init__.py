"""One module per algorithm, each exposing ``Config``, ``PRESETS``, ``train``, ``evaluate``,
``seed_params``, ``state_template`` and ``TrainResult``."""
import importlib

from surrogate.errors import ConfigError

ALGOS = {"ppo": "surrogate.algos.ppo", "trpo": "surrogate.algos.trpo", "tnpg": "surrogate.algos.tnpg",
         "vpg": "surrogate.algos.vpg"}


def get(name: str):
    """The module of algorithm ``name``; ``ConfigError`` naming the available ones otherwise."""
    if name not in ALGOS:
        raise ConfigError(f"Unknown algorithm {name!r}. Available: {', '.join(sorted(ALGOS))}. "
                          f"Run `surrogate algos` to list them.")
    return importlib.import_module(ALGOS[name])
