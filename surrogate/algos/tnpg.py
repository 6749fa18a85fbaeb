"""Truncated natural policy gradient (Kakade 2002; the TNPG of rllab, Duan et al. 2016): TRPO's natural
step ``sqrt(2 delta / s^T F s) F^-1 g`` from ``cg_iters`` conjugate-gradient iterations, taken without
the line search. Implemented in ``surrogate.algos.trpo`` (``method="tnpg"``)."""
from dataclasses import dataclass
from typing import Literal

from surrogate.algos import trpo
from surrogate.errors import ConfigError


@dataclass(frozen=True)
class Config(trpo.Config):
    method: Literal["trpo", "tnpg", "vpg"] = "tnpg"

    def validate(self) -> "Config":
        if self.method != "tnpg":
            raise ConfigError(f"`surrogate train tnpg` runs method tnpg; for {self.method} run "
                              f"`surrogate train {self.method}`.")
        return super().validate()


PRESETS = trpo.presets_for(Config)
ALGO = trpo.make_algorithm("tnpg", Config, PRESETS)
