"""n-step soft Q-learning without a target network or epsilon schedule (Schulman, Chen & Abbeel 2017,
"Equivalence Between Policy Gradients and Soft Q-Learning", sec. 4 and 6.3).

One network gives ``Q_theta(s, .)``; the policy and the value are read off it (sec. 4):

    pi(a | s) = prior(a) exp((Q(s, a) - V(s)) / tau),   V(s) = tau log E_{a ~ prior} exp(Q(s, a) / tau),

so that ``Q = V + tau log(pi / prior)`` holds exactly (``core.td.boltzmann_log_probs``, ``soft_value``;
the prior is uniform). Acting samples the Boltzmann policy, so exploration needs no epsilon. Each
iteration collects ``num_steps`` steps of ``num_envs`` envs and takes one gradient step on

    L = 1/2 mean_t (Q(s_t, a_t) - y_t)^2,   y_t = r_t + sum_{d>=1} gamma^d (r_{t+d} - tau kl_{t+d}) + gamma^n V(s_{t+n}),

the n-step soft Bellman error (eq. 27) with the one-sample estimate ``kl_t = log pi(a_t|s_t) - log
prior(a_t)`` of the KL penalty in the rewards of later steps, each step bootstrapping from the value
at the end of the rollout (or of its episode), with ``V`` from the same network, not a target copy.
With ``gae_lambda < 1`` the n-step returns become lambda-returns of the same regularised rewards.

The paper's point (sec. 4): since ``Q_theta = V_theta + tau log pi_theta``, the gradient of ``L`` is
exactly ``tau`` times the entropy-regularised policy gradient plus the value error's gradient, i.e.
A2C (``surrogate.algos.a2c``) in this parametrization with value coefficient ``1 / tau``;
``tests/test_soft_q.py`` checks both on a random MDP and on CartPole.
"""
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from surrogate._jax_setup import RUN_ONCE
from surrogate.algos.actor_critic import positive, zeros_like_init
from surrogate.core.advantages import gae
from surrogate.core.distributions import make_dist, noise_from_bits
from surrogate.core.networks import MLP, POLICY_GAIN, MinAtarCNN, dense
from surrogate.core.td import boltzmann_log_probs, soft_value
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm
from surrogate.runtime.devices import cached


@dataclass(frozen=True)
class Config:
    """n-step soft Q-learning hyperparameters. Defaults learn CartPole-v1 (README): n = 5 as Mnih et
    al. 2016's A3C, 16 envs, Adam with a linearly annealed step size, tau = 1 (rewards are 1 per step)."""

    env: str = "CartPole-v1"
    total_steps: int = 800_000
    num_envs: int = 16
    num_steps: int = 5
    """n: steps per env per iteration; each step's target bootstraps at the end of the rollout"""
    gamma: float = 0.99
    gae_lambda: float = 1.0
    """1: the paper's n-step returns; < 1: lambda-returns of the regularised rewards"""
    tau: float = 1.0
    """temperature: the KL (entropy) penalty's weight in the rewards and the Boltzmann policy's"""
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over training"""
    adam_eps: float = 1e-5
    max_grad_norm: float = 10.0
    bootstrap_truncation: bool = True
    """bootstrap time-limit truncations from V(final obs); False treats them as terminal"""
    network: Literal["mlp", "minatar_cnn"] = "mlp"
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "swish", "elu"] = "relu"

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // (self.num_envs * self.num_steps))

    def validate(self) -> "Config":
        for name in ("total_steps", "num_envs", "num_steps", "tau", "learning_rate", "adam_eps", "max_grad_norm"):
            positive(self, name)
        if not 0.0 < self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got {self.gamma!r}, "
                              f"{self.gae_lambda!r}.")
        if self.total_steps < self.num_envs * self.num_steps:
            raise ConfigError(f"total_steps ({self.total_steps}) is smaller than one rollout (num_envs x num_steps "
                              f"= {self.num_envs * self.num_steps}). Raise --total-steps.")
        if not self.hidden or min(self.hidden) <= 0:
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}.")
        return self


PRESETS = {
    "cartpole": Config(),
    # MinAtar (Young & Tian 2019's network; tau and the step size of the paper's Atari runs, sec. 6.3)
    "minatar": Config(env="Breakout-MinAtar", total_steps=5_000_000, num_envs=16, tau=0.01, learning_rate=7e-4,
                      network="minatar_cnn"),
}
METRICS = ("q_loss", "entropy", "kl", "value")


# ----------------------------------------------------------------------------- the Q-network and its heads


class QNetwork(nn.Module):
    """``Q(s, .)``: an MLP on flattened observations, or MinAtar's CNN, with a linear head whose
    orthogonal init has gain ``head_gain``."""

    action_dim: int
    network: str
    hidden: tuple
    activation: str
    head_gain: float

    @nn.compact
    def __call__(self, obs):
        if self.network == "minatar_cnn":
            return dense(self.action_dim, self.head_gain)(MinAtarCNN(self.hidden[-1])(obs))
        return MLP(self.hidden, self.activation, self.action_dim, self.head_gain)(obs)


def q_network(config, env) -> QNetwork:
    """The head's gain is ``POLICY_GAIN * tau``: the Boltzmann policy's logits ``Q / tau`` start as small
    as PPO's policy logits (a near-uniform policy). With a unit gain and a small tau the initial policy
    is almost deterministic and never explores (MinAtar Breakout at tau = 0.01: no reward in 50k steps)."""
    return QNetwork(env.action_dim, config.network, tuple(config.hidden), config.activation,
                    POLICY_GAIN * config.tau)


def q_values(config, env, params, obs):
    """``Q(obs, .)``; MLPs see observations flattened, the CNN keeps them as images."""
    if config.network == "mlp":
        obs = obs.reshape(*obs.shape[:obs.ndim - len(env.obs_shape)], -1)
    return q_network(config, env).apply(params, obs.astype(jnp.float32))


def heads(config, env, params, obs):
    """``(log pi(. | s), V(s))`` read off ``Q`` (sec. 4): the Boltzmann policy and the soft value."""
    q = q_values(config, env, params, obs)
    return boltzmann_log_probs(q, config.tau), soft_value(q, config.tau)


def init_params(config, env, key):
    """Flax's initialisation in a small jitted program (compiled once per shape, at -O0)."""
    net = q_network(config, env)
    init = cached(("soft_q_init", net, env.obs_shape), lambda: jax.jit(
        lambda k: net.init(k, jnp.zeros((1, *env.obs_shape), jnp.float32)), compiler_options=RUN_ONCE))
    return jax.device_get(init(key))


class State(NamedTuple):
    params: Any
    opt_state: Any


def learning_rate(config):
    """Constant, or linear to 0 over the run's updates (one per iteration)."""
    return optax.linear_schedule(config.learning_rate, 0.0, config.num_updates) if config.anneal_lr \
        else config.learning_rate


def optimizer(config: Config):
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                       optax.adam(learning_rate(config), eps=config.adam_eps))


def init(config: Config, env, key) -> State:
    if not env.discrete:
        raise ConfigError(f"soft_q needs discrete actions (a Boltzmann policy over Q); {env.id} has continuous "
                          f"ones. Use ppo or trpo instead.")
    params = init_params(config, env, key)
    return State(params, zeros_like_init(optimizer(config).init, params))  # Adam starts at zeros


# ----------------------------------------------------------------------------- acting


def policy(config, state):
    return state.params


def act_words(config, env) -> int:
    return env.action_dim  # one Gumbel variate per action


def boltzmann_act(heads_fn):
    """``act(deterministic)`` for a policy given as ``heads_fn(params, obs) -> (log_pi, value)``:
    Gumbel-max sampling of ``log_pi`` (noise from the step's random bits), or its argmax."""
    def make(deterministic: bool):
        def act_fn(params, obs, carry, bits):
            log_pi, _ = heads_fn(params, obs)
            if deterministic:
                return log_pi.argmax(-1), carry
            return (log_pi + noise_from_bits(bits, True)).argmax(-1), carry

        return act_fn

    return make


def act(config, env, deterministic: bool):
    return boltzmann_act(lambda p, o: heads(config, env, p, o))(deterministic)


# ----------------------------------------------------------------------------- the regularised targets


class Targets(NamedTuple):
    """What both soft Q-learning and entropy-regularised A2C need from one rollout (no gradient)."""

    log_pi: Any  # log pi(. | s_t), [T, N, A], differentiable
    log_pi_taken: Any  # log pi(a_t | s_t), [T, N], differentiable
    values: Any  # V(s_t), [T, N], differentiable
    kl: Any  # log pi(a_t|s_t) - log prior(a_t): the one-sample KL estimate, [T, N]
    advantages: Any  # G'_t - V(s_t), the lambda-returns of the regularised rewards r - tau kl minus V
    returns: Any  # G'_t, the value target


def regularized_targets(config, heads_fn, params, batch, log_prior) -> Targets:
    """The rollout's entropy-regularised returns (Schulman, Chen & Abbeel 2017, eq. 4 with the KL in
    the rewards): ``G'_t`` = GAE(lambda) returns of ``r_t - tau kl_t``, bootstrapping from ``V`` of the
    state each step reached (the final observation at a truncation, with ``bootstrap_truncation``).
    ``heads_fn(params, obs) -> (log_pi [..., A], values)``; ``log_prior``: ``log
    prior(a_t)`` per step (``-log |A|`` for the uniform prior, 0 for none)."""
    log_pi, values = heads_fn(params, batch.obs)
    log_pi_taken = jnp.take_along_axis(log_pi, batch.actions[..., None], axis=-1)[..., 0]
    _, next_values = heads_fn(params, batch.next_obs)
    stop = jax.lax.stop_gradient
    terminations = batch.terminations if config.bootstrap_truncation else batch.dones
    kl = stop(log_pi_taken) - log_prior
    advantages, returns = gae(batch.rewards - config.tau * kl, stop(values), stop(next_values), terminations,
                              batch.dones, config.gamma, config.gae_lambda)
    return Targets(log_pi, log_pi_taken, values, kl, advantages, returns)


# ----------------------------------------------------------------------------- learning


def soft_q_loss(config, heads_fn, params, batch, log_prior):
    """``1/2 mean (Q(s_t, a_t) - y_t)^2`` with ``Q = V + tau (log pi - log prior)`` and the target
    ``y_t = G'_t + tau kl_t`` (the regularised return without step t's own KL term)."""
    t = regularized_targets(config, heads_fn, params, batch, log_prior)
    q_taken = t.values + config.tau * (t.log_pi_taken - log_prior)
    y = t.returns + config.tau * t.kl
    loss = 0.5 * jnp.mean(jnp.square(q_taken - y))
    return loss, dict(q_loss=loss, entropy=entropy(t.log_pi), kl=t.kl.mean(), value=t.values.mean())


def entropy(log_pi):
    return make_dist(log_pi, True).entropy().mean()


def uniform_log_prior(env):
    return -jnp.log(env.action_dim)


def learn(config: Config, env, state: State, experience, key):
    """One Adam step on the n-step soft Bellman error of the iteration's rollout."""
    heads_fn = lambda p, o: heads(config, env, p, o)
    loss = lambda p: soft_q_loss(config, heads_fn, p, experience.batch, uniform_log_prior(env))
    grads, metrics = jax.grad(loss, has_aux=True)(state.params)
    updates, opt_state = optimizer(config).update(grads, state.opt_state, state.params)
    return State(optax.apply_updates(state.params, updates), opt_state), metrics


ALGO = Algorithm("soft_q", Config, PRESETS, METRICS, init, policy, act, learn, act_words=act_words,
                 num_iterations=lambda config: config.num_updates)
