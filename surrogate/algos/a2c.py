"""Advantage actor-critic, synchronous (A2C; Mnih et al. 2016, "Asynchronous Methods for Deep
Reinforcement Learning", Algorithm S3, with the envs stepped in lockstep), entropy-regularised as in
Schulman, Chen & Abbeel 2017 ("Equivalence Between Policy Gradients and Soft Q-Learning").

Each iteration collects ``num_steps`` steps of ``num_envs`` envs and takes one gradient step on

    L = -mean_t log pi(a_t | s_t) A_t  +  vf_coef * 1/2 mean_t (V(s_t) - G_t)^2   [- tau * H  (naive)]

where ``G_t`` are the n-step (GAE(lambda)) returns and ``A_t = G_t - V(s_t)``. ``entropy="proper"``
(the paper's sec. 2, eq. 4; default): the KL to a reference policy is a cost in the rewards,
``r_t - tau kl_t`` with ``kl_t = log pi(a_t|s_t) - log prior(a_t)``, so ``G_t`` counts the future
steps' penalties and ``A_t`` the current one's (its one-sample form: ``E_a[grad log pi (log pi - log
prior)]`` is the gradient of the KL; ``tests/test_a2c.py`` checks it); the prior is uniform (an entropy
bonus) or, with ``kl_reference="initial"``, the initial policy. ``entropy="naive"``: A3C's bonus
``tau * H(pi(.|s_t))`` on the loss only.

``parametrization="q"`` reads the policy and the value off one Q-network as soft Q-learning does
(``surrogate.algos.soft_q``: ``pi`` Boltzmann in ``Q / tau``, ``V`` the soft value); with
``vf_coef = 1 / tau`` the gradient of ``L`` is then ``1 / tau`` times soft Q-learning's (sec. 4), and
with Adam's epsilon and the clip norm scaled by ``1 / tau`` the two learn the same parameters.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from surrogate.algos import actor_critic as ac
from surrogate.algos import soft_q
from surrogate.algos.actor_critic import OnPolicyConfig, positive
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm
from surrogate.runtime.rollout import policy_input


@dataclass(frozen=True)
class Config(OnPolicyConfig):
    """A2C hyperparameters. Defaults: rl-zoo3's CartPole-v1 A2C (8 envs x 5 steps, gamma 0.99, lambda
    1, RMSProp 7e-4 with alpha 0.99 and eps 1e-5, vf_coef 0.5, grad norm 0.5), with tau = 0.01."""

    num_steps: int = 5
    gamma: float = 0.99
    gae_lambda: float = 1.0
    normalize_advantages: bool = False
    total_steps: int = 500_000
    learning_rate: float = 7e-4
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    opt_eps: float = 1e-5
    """RMSProp's or Adam's epsilon"""
    rmsprop_decay: float = 0.99
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    tau: float = 0.01
    """weight of the entropy bonus / KL penalty"""
    entropy: Literal["proper", "naive"] = "proper"
    """proper: KL to the reference in the rewards (Schulman et al. 2017, eq. 4); naive: A3C's bonus"""
    kl_reference: Literal["uniform", "initial"] = "uniform"
    """the reference policy of the KL: uniform (an entropy bonus) or the initial policy, kept fixed"""
    parametrization: Literal["actor_critic", "q"] = "actor_critic"
    """actor_critic: policy and value heads; q: both read off one Q-network (soft Q-learning's)"""

    def validate(self) -> "Config":
        super().validate()
        for name in ("learning_rate", "opt_eps", "max_grad_norm", "rmsprop_decay"):
            positive(self, name)
        for name in ("vf_coef", "tau"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if self.parametrization == "q":
            if self.tau <= 0:
                raise ConfigError("parametrization=q needs tau > 0: the policy is Boltzmann in Q / tau.")
            if self.kl_reference != "uniform" or self.network == "nature_cnn":
                raise ConfigError("parametrization=q supports the uniform reference and the mlp or minatar_cnn "
                                  "networks. Drop --kl-reference / --network, or use --parametrization actor_critic.")
        return self


PRESETS = {
    "cartpole": Config(),
    # MinAtar: 16 envs, Young & Tian 2019's network (the actor-critic with a shared MinAtar CNN torso)
    "minatar": Config(env="Breakout-MinAtar", total_steps=5_000_000, num_envs=16, network="minatar_cnn"),
}
METRICS = ("policy_loss", "value_loss", "entropy", "kl")


# ----------------------------------------------------------------------------- networks and state


class State(NamedTuple):
    params: Any
    opt_state: Any
    reference: Any  # the initial parameters (kl_reference="initial"), else ()


def q_config(config: Config):
    """The soft-Q view of ``config`` (its network and tau) for ``parametrization="q"``."""
    return soft_q.Config(tau=config.tau, gamma=config.gamma, gae_lambda=config.gae_lambda,
                         bootstrap_truncation=config.bootstrap_truncation,
                         network="mlp" if config.network in ("auto", "mlp") else config.network,
                         hidden=config.hidden, activation=config.activation)


def heads(config: Config, env, params, obs):
    """``(log pi(. | s), V(s))`` of the actor-critic, or read off the Q-network."""
    if config.parametrization == "q":
        return soft_q.heads(q_config(config), env, params, obs)
    network = ac.make_learner(config, env).network
    logits, values = network.apply(params, obs.astype(jnp.float32))
    return jax.nn.log_softmax(logits), values


def optimizer(config: Config):
    opt = (optax.rmsprop(config.learning_rate, decay=config.rmsprop_decay, eps=config.opt_eps)
           if config.optimizer == "rmsprop" else optax.adam(config.learning_rate, eps=config.opt_eps))
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)


def init(config: Config, env, key) -> State:
    if not env.discrete:
        raise ConfigError(f"a2c here supports discrete actions; {env.id} has continuous ones. Use ppo or trpo.")
    if config.parametrization == "q":
        params = soft_q.init_params(q_config(config), env, key)
    else:
        params = ac.initial_params(ac.make_learner(config, env), env.obs_shape, key)
    reference = jax.tree.map(np.copy, params) if config.kl_reference == "initial" else ()
    return State(params, ac.zeros_like_init(optimizer(config).init, params), reference)


# ----------------------------------------------------------------------------- acting


def policy(config, state: State):
    return state.params


def act(config: Config, env, deterministic: bool):
    """Sampling (Gumbel-max) from ``pi``, or its argmax; the same as soft Q-learning's in the q
    parametrization, so the two draw the same actions from the same bits."""
    return soft_q.boltzmann_act(lambda p, o: heads(config, env, p, o))(deterministic)


# ----------------------------------------------------------------------------- learning


def log_prior(config: Config, env, state: State, batch):
    """``log prior(a_t)`` per step: uniform, or the initial policy's (fixed)."""
    if config.kl_reference == "uniform":
        return soft_q.uniform_log_prior(env)
    log_ref, _ = heads(config, env, state.reference, batch.obs)
    return jnp.take_along_axis(log_ref, batch.actions[..., None], axis=-1)[..., 0]


def a2c_loss(config: Config, heads_fn, params, batch, log_prior):
    """The A2C loss of one rollout (module docstring), with its metrics. ``heads_fn(params, obs) ->
    (log_pi, V)``; the proper entropy's KL is in the rewards, the naive one's bonus in the loss."""
    cfg = config if config.entropy == "proper" else dataclasses.replace(config, tau=0.0)
    t = soft_q.regularized_targets(cfg, heads_fn, params, batch, log_prior)
    adv = t.advantages
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy_loss = -jnp.mean(t.log_pi_taken * adv)
    value_loss = 0.5 * jnp.mean(jnp.square(t.values - t.returns))
    entropy = soft_q.entropy(t.log_pi)
    loss = policy_loss + config.vf_coef * value_loss
    if config.entropy == "naive":
        loss = loss - config.tau * entropy
    return loss, dict(policy_loss=policy_loss, value_loss=value_loss, entropy=entropy, kl=t.kl.mean())


def learn(config: Config, env, state: State, experience, key):
    """One gradient step on the rollout's A2C loss (observations normalised as they were for acting)."""
    spec, b = ac.make_learner(config, env).spec, experience.batch
    batch = b._replace(obs=policy_input(spec, experience.obs_stats, b.obs.astype(jnp.float32)),
                       next_obs=policy_input(spec, experience.obs_stats, b.next_obs.astype(jnp.float32)))
    prior = jax.lax.stop_gradient(log_prior(config, env, state, batch))
    loss = lambda p: a2c_loss(config, lambda q, o: heads(config, env, q, o), p, batch, prior)
    grads, metrics = jax.grad(loss, has_aux=True)(state.params)
    updates, opt_state = optimizer(config).update(grads, state.opt_state, state.params)
    return State(optax.apply_updates(state.params, updates), opt_state, state.reference), metrics


ALGO = Algorithm("a2c", Config, PRESETS, METRICS, init, policy, act, learn, act_words=soft_q.act_words,
                 num_iterations=lambda config: config.num_updates)
