"""Reward-weighted regression as rllab runs it: episodic RWR (ERWR; Kober & Peters 2009, Peters & Schaal
2007), the RWR of the rllab benchmark (Duan et al. 2016; ``rllab/algos/erwr.py``).

ERWR is rllab's VPG with positive advantages and an L-BFGS optimiser: the advantages (discounted returns
to go minus rllab's linear feature baseline, GAE with lambda 1 by default) are standardised and shifted to
be positive (``core.lbfgs.positive_advantages``), and the policy maximises the weighted log-likelihood
``mean_i w_i log pi(a_i | s_i)`` of the batch's actions with ``lbfgs_iters`` L-BFGS iterations from its
current parameters (``core.lbfgs.weighted_max_likelihood``): a weighted maximum-likelihood (M-)step,
which for a linear-Gaussian policy is weighted least squares (Peters & Schaal 2007, eq. 9). Then the
baseline is refitted on the batch's returns (``algos.linear_baseline``).

The policy is the actor-critic network's actor (``algos.actor_critic``: a Gaussian with state-independent
log-std for continuous actions); its critic is not used.
"""
from dataclasses import dataclass
from typing import Any, NamedTuple

from surrogate.algos import actor_critic as ac
from surrogate.algos import linear_baseline
from surrogate.algos.actor_critic import OnPolicyConfig, positive
from surrogate.core.distributions import make_dist
from surrogate.core.lbfgs import positive_advantages, weighted_log_likelihood_loss, weighted_max_likelihood
from surrogate.core.networks import ActorCritic, join_params, split_params
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm


@dataclass(frozen=True)
class Config(OnPolicyConfig):
    """ERWR hyperparameters. Defaults: the ``pendulum`` preset. ``normalize_advantages``: rllab's
    ``center_adv`` (standardise before the shift to positive)."""

    env: str = "Pendulum-v1"
    total_steps: int = 200_000
    num_envs: int = 10
    num_steps: int = 200
    gamma: float = 0.95
    gae_lambda: float = 1.0
    bootstrap_truncation: bool = False
    """rllab ends a path at its horizon with a value of 0 after it"""
    lbfgs_iters: int = 50
    """L-BFGS iterations of the weighted maximum-likelihood step (rllab's LbfgsOptimizer; the benchmark: 50)"""
    reg_coeff: float = 1e-5
    """ridge coefficient of the linear baseline"""

    def validate(self) -> "Config":
        super().validate()
        positive(self, "lbfgs_iters")
        if self.reg_coeff <= 0:
            raise ConfigError(f"reg_coeff must be > 0, got {self.reg_coeff!r}.")
        if self.network in ("nature_cnn", "minatar_cnn"):
            raise ConfigError(f"rwr fits an MLP policy; got network {self.network!r}. Use --network mlp.")
        return self


_RLLAB = dict(hidden=(100, 50, 25), activation="tanh", gamma=0.99, gae_lambda=1.0, num_envs=100, num_steps=500)
PRESETS = {
    # Gymnax Pendulum-v1 (200-step episodes), 10 envs x 200 steps, 100 iterations: small and quick.
    "pendulum": Config(),
    # The rllab benchmark (Duan et al. 2016; ../shared/paper-tables.md): 50k steps per batch (100 envs x 500
    # steps), 500 iterations, gamma 0.99, lambda 1, 100-50-25 tanh Gaussian policy, linear baseline, L-BFGS
    # 50 iterations. `surrogate bench rllab` replaces the env (here a stand-in) and the batch layout.
    "rllab": Config(**_RLLAB, total_steps=500 * 50_000),
}

METRICS = ("loss_before", "loss_after", "kl", "entropy", "value_loss")


class State(NamedTuple):
    params: Any  # the actor-critic network's (the actor is the policy; the critic is not trained)
    baseline: Any  # the linear baseline's coefficients ``[2 D + 4]``


def init(config: Config, env, key) -> State:
    learner = ac.make_learner(config, env)
    return State(ac.initial_params(learner, env.obs_shape, key), linear_baseline.init_coeffs(env))


def weighted_ml_step(config, learner, params, obs, actions, weights):
    """The policy maximising ``mean_i w_i log pi(a_i | s_i)`` over the actor's parameters by ``config.lbfgs_iters``
    L-BFGS iterations (also REPS's policy step); returns ``(params, metrics)``: the loss before and after,
    the mean KL(old || new) and the new policy's entropy on the batch."""
    actor, critic = split_params(params)
    dist = lambda a: make_dist(learner.network.apply(join_params(a, critic), obs, method=ActorCritic.policy),
                               learner.discrete)
    log_prob = lambda a: dist(a).log_prob(actions)
    loss_before = weighted_log_likelihood_loss(log_prob, actor, weights)
    new_actor, loss_after = weighted_max_likelihood(log_prob, actor, weights, config.lbfgs_iters)
    new = dist(new_actor)
    metrics = dict(loss_before=loss_before, loss_after=loss_after, kl=dist(actor).kl(new).mean(),
                   entropy=new.entropy().mean())
    return join_params(new_actor, critic), metrics


def learn(config: Config, env, state: State, experience, key):
    """One ERWR update: advantages with the baseline, the weighted maximum-likelihood step, the baseline's refit."""
    learner = ac.make_learner(config, env)
    data, phi = linear_baseline.prepare(config, learner, state.params, state.baseline, experience)
    weights = positive_advantages(data.advantages, config.normalize_advantages)
    params, metrics = weighted_ml_step(config, learner, state.params, data.obs, data.actions, weights)
    coeffs, value_loss = linear_baseline.fit(phi, data.targets, config.reg_coeff)
    return State(params, coeffs), dict(metrics, value_loss=value_loss)


ALGO = Algorithm("rwr", Config, PRESETS, METRICS, init, ac.policy, ac.act, learn, act_words=ac.act_words,
                 host_act=ac.host_act)
