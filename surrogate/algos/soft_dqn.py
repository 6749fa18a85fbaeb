"""Soft DQN: DQN with the soft Bellman target and a Boltzmann policy (Schulman, Chen & Abbeel 2017,
"Equivalence Between Policy Gradients and Soft Q-Learning", sec. 6.2, "soft vs standard DQN";
Haarnoja et al. 2017).

Everything is ``surrogate.algos.dqn`` with ``soft_tau > 0``: acting samples ``pi(a | s) ~
exp(Q(s, a) / soft_tau)`` (the Gumbel-max trick on the acting bits; evaluation stays greedy) instead
of epsilon-greedy, and the target of a replayed transition is

    y = r + gamma (1 - term) V_target(s'),   V(s') = soft_tau log mean_a exp(Q_target(s', a) / soft_tau)

(``core.td.soft_q_targets``, eq. 11 with a uniform prior) in place of DQN's ``max_a Q_target(s', a)``,
with the replay buffer and target network of DQN (the on-policy n-step form with no target network is
``surrogate.algos.soft_q``).
"""
import dataclasses
from dataclasses import dataclass

from surrogate.algos import dqn


@dataclass(frozen=True)
class Config(dqn.Config):
    """DQN's hyperparameters with ``soft_tau`` on and no epsilon by default; otherwise DQN's ``cartpole``
    preset (rejax's schedule, a 128-128 net, truncations bootstrapped)."""

    soft_tau: float = 0.05
    eps_start: float = 0.0
    eps_end: float = 0.0
    hidden: tuple[int, ...] = (128, 128)
    bootstrap_truncation: bool = True


def _soft(preset: dqn.Config, **changes) -> Config:
    return Config(**{**dataclasses.asdict(preset), **changes})


PRESETS = {
    "cartpole": Config(),
    # MinAtar's DQN config (dqn.PRESETS["minatar"]) with Boltzmann acting at temperature 0.01, no epsilon
    "minatar": _soft(dqn.PRESETS["minatar"], soft_tau=0.01, eps_start=0.0, eps_end=0.0),
}

ALGO = dqn.ALGO._replace(name="soft_dqn", Config=Config, presets=PRESETS)
