"""Trust Region Policy Optimization (Schulman et al. 2015) and its family: truncated natural policy
gradient (TNPG: the same natural step, no line search) and vanilla policy gradient (VPG: REINFORCE
with a learned baseline, rllab's variant: one Adam step on the surrogate per batch). Advantages by
GAE (Schulman et al. 2016) with the value function fitted either by Adam regression or by the GAE
paper's trust-region regression (section 5).

One update: ``prepare`` (GAE on the rollout, shared with PPO) -> the policy step of ``config.method``
(``trpo_step``, ``tnpg_step`` or ``vpg_step``) -> ``fit_value``. The value function that computed the
advantages is the one from before its fit, as in the GAE paper. The conjugate gradient,
Fisher-vector products and line search are in ``surrogate.core.trust_region``.
"""
import dataclasses
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from surrogate.algos import actor_critic as ac
from surrogate.algos import linear_baseline
from surrogate.algos.actor_critic import Learner, OnPolicyConfig, TrainState, UpdateData, positive, prepare
from surrogate.core.distributions import make_dist
from surrogate.core.losses import normalize_advantages
from surrogate.core.minibatches import epoch_permutations, shuffled_minibatches
from surrogate.core.networks import ActorCritic, join_params, split_params
from surrogate.core.trust_region import fisher_vector_product, line_search, natural_step
from surrogate.errors import ConfigError
from surrogate.runtime import parts
from surrogate.runtime.contract import Algorithm

METHODS = ("trpo", "tnpg", "vpg")


@dataclass(frozen=True)
class Config(OnPolicyConfig):
    """TRPO/TNPG/VPG hyperparameters. Defaults: the TRPO paper's step (max KL 0.01, 10 CG iterations)
    on CartPole-v1 with 8 envs x 128 steps per batch and 10 value epochs (with 5, 1 of 28 seeds stalled
    near 300 here); ``PRESETS`` has Pendulum, MuJoCo and SB3-contrib settings."""

    method: Literal["trpo", "tnpg", "vpg"] = "trpo"
    num_steps: int = 128
    gamma: float = 0.99
    gae_lambda: float = 0.95
    total_steps: int = 150_000
    max_kl: float = 0.01
    """trust-region radius delta on the mean KL(pi_old || pi) (trpo, tnpg)"""
    cg_iters: int = 10
    cg_damping: float = 0.1
    fvp_fraction: float = 1.0
    """fraction of the batch the Fisher-vector products use (the TRPO paper: 0.1)"""
    line_search_steps: int = 10
    backtrack: float = 0.8
    """line-search shrink factor per step (trpo)"""
    policy_lr: float = 3e-3
    """Adam step size of the policy (vpg)"""
    vf_fit: Literal["adam", "trust_region"] = "adam"
    """value regression: Adam epochs, or the GAE paper's trust-region step (section 5)"""
    vf_lr: float = 1e-3
    vf_epochs: int = 10
    vf_minibatch_size: int = 64
    vf_max_kl: float = 0.1
    """trust-region radius epsilon of the value fit: mean (V - V_old)^2 / (2 sigma^2) <= epsilon (the paper's
    value is not published; on CartPole, 8 seeds, 0.01 learned slower than 0.1 at every lambda)"""
    baseline: Literal["learned", "linear"] = "learned"
    """learned: the value network (vf_*); linear: rllab's linear feature baseline (``algos.linear_baseline``),
    fitted to the returns after each batch's advantages are computed; the value network is then not trained"""

    def validate(self) -> "Config":
        super().validate()
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}.")
        for name in ("max_kl", "cg_iters", "line_search_steps", "policy_lr", "vf_lr", "vf_epochs",
                     "vf_minibatch_size", "vf_max_kl"):
            positive(self, name)
        if self.cg_damping < 0:
            raise ConfigError(f"cg_damping must be >= 0, got {self.cg_damping!r}.")
        if not 0.0 < self.fvp_fraction <= 1.0:
            raise ConfigError(f"fvp_fraction must be in (0, 1], got {self.fvp_fraction!r}.")
        if not 0.0 < self.backtrack < 1.0:
            raise ConfigError(f"backtrack must be in (0, 1), got {self.backtrack!r}.")
        if self.baseline not in ("learned", "linear"):
            raise ConfigError(f"baseline must be 'learned' or 'linear', got {self.baseline!r}.")
        if self.baseline == "learned" and self.vf_fit == "adam" and self.batch_size % self.vf_minibatch_size:
            raise ConfigError(
                f"The batch of num_envs x num_steps = {self.batch_size} steps does not split into value minibatches "
                f"of {self.vf_minibatch_size}. Choose --vf-minibatch-size dividing {self.batch_size}.")
        if self.network in ("nature_cnn", "minatar_cnn"):
            raise ConfigError(f"{self.method} needs separate policy and value networks; the Nature CNN shares its "
                              f"torso. Use --network mlp.")
        return self


PRESETS = {
    "cartpole": Config(),
    # Pendulum-v1 (JAX backend): 8 envs x 128 steps, gamma 0.95; TRPO reaches about -180 in 300k steps.
    "pendulum": Config(env="Pendulum-v1", total_steps=300_000, gamma=0.95),
    # OpenAI Baselines' trpo_mpi MuJoCo defaults: 1024 steps per batch, max KL 0.01, 10 CG iterations,
    # damping 0.1, gamma 0.99, lambda 0.98, value: 5 Adam epochs of minibatch 64 at 1e-3; observations
    # normalised; 64-64 tanh networks.
    "mujoco": Config(env="Hopper-v5", total_steps=1_000_000, num_envs=1, num_steps=1024, gae_lambda=0.98,
                     vf_epochs=5, normalize_obs=True),
    # sb3-contrib 2.9.2 TRPO defaults (the speed benchmark's common ground): 2048 steps, 15 CG
    # iterations, damping 0.1, line search 10 x 0.8, value: 10 epochs of minibatch 128 at 1e-3.
    "sb3-contrib": Config(env="Pendulum-v1", total_steps=1_000_000, num_envs=1, num_steps=2048, cg_iters=15,
                          vf_epochs=10, vf_minibatch_size=128),
}

METRICS = ("surrogate_gain", "kl", "entropy", "backtracks", "value_loss")


# ----------------------------------------------------------------------------- learner


def make_learner(config: Config, env) -> Learner:
    """Optimisers: (policy: Adam for vpg, else None; value: Adam, or None for the trust-region fit)."""
    policy_opt = optax.adam(config.policy_lr) if config.method == "vpg" else None
    # (flattened: one parameter vector, fewer and larger XLA ops per minibatch step)
    adam_fit = config.vf_fit == "adam" and config.baseline == "learned"
    value_opt = optax.flatten(optax.adam(config.vf_lr)) if adam_fit else None
    return ac.make_learner(config, env, (policy_opt, value_opt))


def init_opt_state(config: Config, env, params):
    """``(policy optimiser's state, value fit's state)``; with ``baseline="linear"`` the value fit's state is
    the linear baseline's coefficients."""
    actor, critic = split_params(params)
    policy_opt, value_opt = make_learner(config, env).optimizer
    value_state = ac.zeros_like_init(value_opt.init, critic) if value_opt else ()
    return (ac.zeros_like_init(lambda a: policy_opt.init(ravel_pytree(a)[0]), actor) if policy_opt else (),
            linear_baseline.init_coeffs(env) if config.baseline == "linear" else value_state)


def init(config: Config, env, key) -> TrainState:
    return ac.init_state(init_opt_state, config, env, key)


# ----------------------------------------------------------------------------- policy step


def policy_update(config: Config, learner: Learner, actor, critic, opt_state, data: UpdateData):
    """One policy step of ``config.method`` (``policy_step``) of the MLP actor on the rows of ``data``;
    returns ``(actor, opt_state, metrics)``."""
    flat, unravel = ravel_pytree(actor)
    outputs = lambda f, d: learner.network.apply(join_params(unravel(f), critic), d.obs, method=ActorCritic.policy)
    flat, opt_state, metrics = policy_step(config, learner, outputs, flat, opt_state, data)
    return unravel(flat), opt_state, metrics


def policy_objectives(config: Config, discrete: bool, outputs, flat_old, data, forward_mode: bool = True):
    """``(surrogate, mean_kl, fisher)`` of the policy whose distribution parameters on ``data`` are
    ``outputs(flat, data)`` (logits, or (mean, log_std)): the surrogate ``L = mean(pi/pi_old * A)`` (TRPO eq. 14,
    sample-based), the mean KL(pi_old || pi) from the policy at ``flat_old``, and ``fisher(flat)``, the
    Fisher-vector products of that KL on every (1 / fvp_fraction)-th entry of ``data``'s leading axis (TRPO
    sec. 6: 10%; rows, or a recurrent policy's whole sequences; ``forward_mode``: as in ``fisher_vector_product``)."""
    dist_at = lambda flat, d: make_dist(outputs(flat, d), discrete)
    adv = normalize_advantages(data.advantages) if config.normalize_advantages else data.advantages
    old = jax.tree.map(jax.lax.stop_gradient, dist_at(flat_old, data))

    def surrogate(flat):
        return jnp.mean(jnp.exp(dist_at(flat, data).log_prob(data.actions) - data.old_log_probs) * adv)

    def mean_kl(flat):
        return old.kl(dist_at(flat, data)).mean()

    def fisher(flat):
        stride = max(1, round(1.0 / config.fvp_fraction))
        sub, sub_old = jax.tree.map(lambda x: x[::stride], (data, old))
        return fisher_vector_product(lambda f: outputs(f, sub), flat,
                                     lambda z: sub_old.kl(make_dist(z, discrete)).mean(), config.cg_damping,
                                     forward_mode)

    return surrogate, mean_kl, fisher


def policy_step(config: Config, learner: Learner, outputs, flat_old, opt_state, data, forward_mode: bool = True):
    """One step of ``config.method`` on ``policy_objectives``; returns ``(flat, opt_state, metrics)`` (surrogate
    gain, mean KL, entropy, backtracks)."""
    surrogate, mean_kl, fisher = policy_objectives(config, learner.discrete, outputs, flat_old, data, forward_mode)
    grad = jax.grad(surrogate)(flat_old)  # the policy gradient: equal to that of mean(log pi * A) at pi_old
    step = POLICY_STEPS[config.method]
    flat, opt_state, backtracks = step(config, learner, flat_old, grad, opt_state, fisher, surrogate, mean_kl)
    metrics = dict(surrogate_gain=surrogate(flat) - surrogate(flat_old), kl=mean_kl(flat),
                   entropy=make_dist(outputs(flat, data), learner.discrete).entropy().mean(),
                   backtracks=backtracks.astype(jnp.float32))
    return flat, opt_state, metrics


def trpo_step(config: Config, learner, flat, grad, opt_state, fisher, surrogate, mean_kl):
    """TRPO (sec. 6, appendix C): the natural step ``sqrt(2 delta / s^T F s) s``, ``F s = g`` by conjugate
    gradient, then a backtracking line search until the KL constraint holds and the surrogate improves."""
    step = natural_step(grad, fisher(flat), config.max_kl, config.cg_iters).step
    found = line_search(lambda f: (surrogate(f), mean_kl(f)), flat, step, config.max_kl, config.backtrack,
                        config.line_search_steps)
    return found.x, opt_state, found.backtracks


def tnpg_step(config: Config, learner, flat, grad, opt_state, fisher, surrogate, mean_kl):
    """Truncated natural policy gradient (Kakade 2002; rllab's TNPG, Duan et al. 2016): the natural step
    scaled to the KL radius, taken without a line search."""
    return flat + natural_step(grad, fisher(flat), config.max_kl, config.cg_iters).step, opt_state, jnp.zeros((), jnp.int32)


def vpg_step(config: Config, learner, flat, grad, opt_state, fisher, surrogate, mean_kl):
    """REINFORCE with a baseline (Williams 1992) as in rllab: one Adam step up the policy gradient."""
    updates, opt_state = learner.optimizer[0].update(-grad, opt_state)
    return flat + updates, opt_state, jnp.zeros((), jnp.int32)


POLICY_STEPS = {"trpo": trpo_step, "tnpg": tnpg_step, "vpg": vpg_step}


# ----------------------------------------------------------------------------- value fit


def fit_value(config: Config, learner: Learner, actor, critic, opt_state, data: UpdateData, key):
    """Regress V on the TD(lambda) targets; returns ``(critic, opt_state, loss after the fit)``."""
    def values(c, obs):
        return learner.network.apply(join_params(actor, c), obs, method=ActorCritic.value)

    if config.vf_fit == "trust_region":
        critic = value_trust_region_step(config, values, critic, data)
    else:
        critic, opt_state = value_epochs(config, lambda c, mb: values(c, mb.obs), learner.optimizer[1], critic,
                                         opt_state, data, key)
    return critic, opt_state, 0.5 * jnp.mean(jnp.square(values(critic, data.obs) - data.targets))


def value_epochs(config: Config, values, optimizer, critic, opt_state, data, key):
    """``vf_epochs`` epochs of ``optimizer`` on ``0.5 mean (values(critic, minibatch) - targets)^2`` over shuffled
    minibatches of ``vf_minibatch_size`` entries of ``data``'s leading axis (rows, or a recurrent critic's whole
    sequences); returns ``(critic, opt_state)``."""
    def loss(c, mb):
        return 0.5 * jnp.mean(jnp.square(values(c, mb) - mb.targets))

    def minibatch_step(state, mb):
        c, s = state
        updates, s = optimizer.update(jax.grad(loss)(c, mb), s)
        return (optax.apply_updates(c, updates), s), None

    def epoch(state, perm):
        mbs = shuffled_minibatches(perm, data, data.obs.shape[0] // config.vf_minibatch_size)
        return jax.lax.scan(minibatch_step, state, mbs)[0], None

    perms = epoch_permutations(key, config.vf_epochs, data.obs.shape[0])
    return jax.lax.scan(epoch, (critic, opt_state), perms)[0]


def value_trust_region_step(config: Config, values, critic, data: UpdateData):
    """The GAE paper's value fit (section 5, eq. 29-31): minimise ``mean (V_phi - V_target)^2`` subject to
    ``mean (V_phi - V_old)^2 / (2 sigma^2) <= epsilon``, ``sigma^2 = mean (V_old - V_target)^2``: one
    natural step with the Gauss-Newton matrix ``J^T J / N`` (the Hessian of the constraint, i.e. the
    Fisher information of a Gaussian value model), computed by CG and scaled to the boundary."""
    flat_old, unravel = ravel_pytree(critic)
    sigma2 = jnp.maximum(jnp.mean(jnp.square(data.old_values - data.targets)), 1e-8)
    neg_loss = lambda f: -jnp.mean(jnp.square(values(unravel(f), data.obs) - data.targets))
    # 0.5 mean (V - V_old)^2 <= epsilon sigma^2 is the constraint in units where its Hessian is J^T J / N
    fvp = fisher_vector_product(lambda f: values(unravel(f), data.obs), flat_old,
                                lambda v: 0.5 * jnp.mean(jnp.square(v - data.old_values)), config.cg_damping)
    step = natural_step(jax.grad(neg_loss)(flat_old), fvp, config.vf_max_kl * sigma2, config.cg_iters).step
    return unravel(flat_old + step)


# ----------------------------------------------------------------------------- one update


def prepare_parts(config: Config, env, train: TrainState, experience, key):
    """GAE with the current value function (shared by the policy step and the value fit), and the
    value fit's shuffles' key (linear baseline: the features to refit it on)."""
    if config.baseline == "linear":
        return linear_baseline.prepare(config, make_learner(config, env), train.params, train.opt_state[1], experience)
    return prepare(config, make_learner(config, env), train.params, experience), key


def step_actor(config: Config, env, train: TrainState, data: UpdateData, key):
    """The policy step on the prepared data."""
    actor, critic = split_params(train.params)
    actor, policy_opt, metrics = policy_update(config, make_learner(config, env), actor, critic, train.opt_state[0],
                                               data)
    return TrainState(join_params(actor, critic), (policy_opt, train.opt_state[1])), metrics


def fit_critic(config: Config, env, train: TrainState, data: UpdateData, key):
    """The value fit; with ``baseline="linear"`` the baseline's refit on the returns (``key``: its features)."""
    if config.baseline == "linear":
        coeffs, loss = linear_baseline.fit(key, data.targets)
        return TrainState(train.params, (train.opt_state[0], coeffs)), dict(value_loss=loss)
    actor, critic = split_params(train.params)
    critic, value_opt, v_loss = fit_value(config, make_learner(config, env), actor, critic, train.opt_state[1], data,
                                          key)
    return TrainState(join_params(actor, critic), (train.opt_state[0], value_opt)), dict(value_loss=v_loss)


PARTS = parts.ActorCriticParts(prepare_parts, step_actor, fit_critic, ac.owners)


def learn(config: Config, env, train: TrainState, experience, key):
    """One update: the policy step, then the value fit (on host envs the fit overlaps the next rollout)."""
    return parts.learn_in_parts(PARTS, config, env, train, experience, key)


def make_algorithm(name: str, config_class, presets: dict) -> Algorithm:
    """The ``Algorithm`` of one method of this family (trpo, tnpg, vpg: ``config_class.method``)."""
    parts.register(name, lambda config: PARTS)
    return Algorithm(name, config_class, presets, METRICS, init, ac.policy, ac.act, learn, act_words=ac.act_words,
                     host_act=ac.host_act)


def presets_for(config_class) -> dict:
    """``PRESETS`` re-made with ``config_class`` (the tnpg and vpg modules' defaults of ``method``)."""
    return {name: config_class(**{**dataclasses.asdict(p), "method": config_class.method}) for name, p in PRESETS.items()}


ALGO = make_algorithm("trpo", Config, PRESETS)
