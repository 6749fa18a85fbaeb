"""Vanilla policy gradient: REINFORCE with a learned baseline (Williams 1992), rllab's VPG (Duan et al.
2016): one Adam step per batch on ``mean(log pi(a|s) A)`` with GAE advantages. Implemented in
``surrogate.algos.trpo`` (``method="vpg"``)."""
from dataclasses import dataclass
from typing import Literal

from surrogate.algos import trpo
from surrogate.errors import ConfigError


@dataclass(frozen=True)
class Config(trpo.Config):
    method: Literal["trpo", "tnpg", "vpg"] = "vpg"

    def validate(self) -> "Config":
        if self.method != "vpg":
            raise ConfigError(f"`surrogate train vpg` runs method vpg; for {self.method} run "
                              f"`surrogate train {self.method}`.")
        return super().validate()


PRESETS = trpo.presets_for(Config)
ALGO = trpo.make_algorithm("vpg", Config, PRESETS)
