"""Proximal Policy Optimization with the clipped surrogate objective (Schulman et al. 2017).

Reads top to bottom: config, the learner (network + optimiser), and one PPO update split into
named phases (``prepare`` -> ``update_epoch`` -> ``update_minibatch``). Rollouts, GAE, the
training drivers (one jitted ``scan`` on JAX envs, a Python rollout loop on host envs),
losses, normalisers and networks live in ``surrogate.core``.
"""
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from surrogate.core import onpolicy
from surrogate.core.distributions import make_dist
from surrogate.core.losses import clipped_surrogate_loss, normalize_advantages, value_loss
from surrogate.core.networks import ActorCritic, join_params, split_params
from surrogate.core.onpolicy import (Learner, TrainState, UpdateData, epoch_permutations, positive, prepare,
                                     shuffled_minibatches)
from surrogate.core.rollout import Batch
from surrogate.errors import ConfigError


@dataclass(frozen=True)
class Config(onpolicy.OnPolicyConfig):
    """PPO hyperparameters. Defaults are rl-zoo3's CartPole-v1 values (all seeds reach 500 in 100k
    steps); ``PRESETS["mujoco"]`` holds the paper's MuJoCo settings (Table 3)."""

    num_epochs: int = 20
    num_minibatches: int = 1
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over training"""
    clip_eps: float = 0.2
    clip_value: bool = True
    """clip the value update to +-clip_eps around the old value (PPO reference code)"""
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    grad_clip: Literal["global_norm", "elementwise"] = "global_norm"
    adam_eps: float = 1e-5
    separate_updates: bool = False
    """actor and critic each with their own optimiser and gradient clipping, the critic's epochs after
    the actor's (rejax's structure; MLP networks only). On host envs the critic's epochs then run
    on a second core while the next rollout runs, since acting needs only the actor."""

    def validate(self) -> "Config":
        super().validate()
        for name in ("num_epochs", "num_minibatches", "learning_rate", "clip_eps", "max_grad_norm", "adam_eps"):
            positive(self, name)
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"The batch of num_envs x num_steps = {self.num_envs} x {self.num_steps} = {self.batch_size} steps "
                f"does not split into {self.num_minibatches} minibatches. Choose --num-minibatches dividing "
                f"{self.batch_size}, or change --num-envs/--num-steps.")
        if self.separate_updates and self.network == "nature_cnn":
            raise ConfigError("separate_updates needs separate actor and critic networks; the Nature CNN shares "
                              "its torso. Use --network mlp or drop --separate-updates.")
        return self


# Named hyperparameter sets; `surrogate train ppo --preset mujoco`.
PRESETS = {
    # rl-zoo3 CartPole-v1 (the SB3 benchmark config): 8 envs x 32 steps, 20 epochs, 1 minibatch.
    "cartpole": Config(),
    # Schulman et al. 2017, Table 3 (horizon 2048, Adam 3e-4, 10 epochs, minibatch 64, gamma .99,
    # lambda .95, eps .2, one actor), with CleanRL's ppo_continuous_action details: observation
    # and reward normalisation, annealed lr, clipped value loss, grad norm 0.5, no entropy bonus.
    # (--separate-updates trains ~5% faster on a host env but scored lower on Hopper: README.)
    "mujoco": Config(env="Hopper-v5", total_steps=1_000_000, num_envs=1, num_steps=2048, num_epochs=10,
                     num_minibatches=32, learning_rate=3e-4, gamma=0.99, gae_lambda=0.95, normalize_obs=True,
                     normalize_reward=True),
    # rejax 0.1.3's own CartPole config, with its semantics (separate actor and critic optimisers,
    # elementwise grad clip, timeouts terminal, constant lr), for like-for-like speed comparisons.
    # With an element-wise clip the separate updates equal the joint one (a test checks); they run
    # ~7% faster here (the actor's epochs, then the critic's: two loops over one network each).
    "cartpole-rejax": Config(num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5, learning_rate=7.5e-4,
                             anneal_lr=False, gamma=0.99, gae_lambda=0.95, ent_coef=0.01, grad_clip="elementwise",
                             bootstrap_truncation=False, adam_eps=1e-8, separate_updates=True),
}


# ----------------------------------------------------------------------------- learner


STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")


def make_learner(config: Config, env) -> Learner:
    grad_steps = config.num_updates * config.num_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.learning_rate, 0.0, grad_steps) if config.anneal_lr else config.learning_rate
    clip = (optax.clip_by_global_norm(config.max_grad_norm) if config.grad_clip == "global_norm"
            else optax.clip(config.max_grad_norm))
    # One flat parameter vector for clipping and Adam: fewer, larger XLA ops per minibatch step.
    optimizer = optax.flatten(optax.chain(clip, optax.adam(lr, eps=config.adam_eps)))
    return onpolicy.make_learner(config, env, optimizer)


def init_opt_state(config: Config, learner: Learner, params):
    if config.separate_updates:
        return tuple(learner.optimizer.init(part) for part in split_params(params))
    return learner.optimizer.init(params)


# ----------------------------------------------------------------------------- one PPO update


def policy_terms(config: Config, learner: Learner, dist_params, mb: UpdateData):
    """Clipped surrogate (eq. 7) minus the entropy bonus; with (pi_loss, entropy, approx_kl, clip_frac)."""
    dist = make_dist(dist_params, learner.discrete)
    adv = normalize_advantages(mb.advantages) if config.normalize_advantages else mb.advantages
    pi_loss, info = clipped_surrogate_loss(dist.log_prob(mb.actions), mb.old_log_probs, adv, config.clip_eps)
    entropy = dist.entropy().mean()
    return pi_loss - config.ent_coef * entropy, (pi_loss, entropy, info["approx_kl"], info["clip_frac"])


def value_terms(config: Config, values, mb: UpdateData):
    return value_loss(values, mb.old_values, mb.targets, config.clip_eps if config.clip_value else None)


def loss_fn(params, config: Config, learner: Learner, mb: UpdateData):
    """The joint loss (eq. 9 without the shared-parameter caveat): policy terms + vf_coef * value loss."""
    dist_params, values = learner.network.apply(params, mb.obs)
    pi_part, (pi_loss, entropy, kl, clip_frac) = policy_terms(config, learner, dist_params, mb)
    v_loss = value_terms(config, values, mb)
    return pi_part + config.vf_coef * v_loss, (pi_loss, v_loss, entropy, kl, clip_frac)


def actor_loss(params, config: Config, learner: Learner, mb: UpdateData):
    return policy_terms(config, learner, learner.network.apply(params, mb.obs, method=ActorCritic.policy), mb)


def critic_loss(params, config: Config, learner: Learner, mb: UpdateData):
    v_loss = value_terms(config, learner.network.apply(params, mb.obs, method=ActorCritic.value), mb)
    return config.vf_coef * v_loss, (v_loss,)


def update_minibatch(config: Config, learner: Learner, train: TrainState, mb: UpdateData, part: str = "joint"):
    """One gradient step on the joint loss, or (``separate_updates``) on the actor's or critic's own loss
    with its own optimiser state."""
    if part == "joint":
        grads, stats = jax.grad(loss_fn, has_aux=True)(train.params, config, learner, mb)
        updates, opt_state = learner.optimizer.update(grads, train.opt_state, train.params)
        return TrainState(optax.apply_updates(train.params, updates), opt_state), stats
    i = 0 if part == "actor" else 1
    parts = split_params(train.params)
    own, other = parts[i], parts[1 - i]
    loss = actor_loss if part == "actor" else critic_loss
    grads, stats = jax.grad(lambda p: loss(join_params(p, other), config, learner, mb), has_aux=True)(own)
    updates, opt_i = learner.optimizer.update(grads, train.opt_state[i], own)
    opt_state = (opt_i, train.opt_state[1]) if i == 0 else (train.opt_state[0], opt_i)
    return TrainState(join_params(optax.apply_updates(own, updates), other), opt_state), stats


def update_epoch(config: Config, learner: Learner, train: TrainState, data: UpdateData, perm, part: str = "joint"):
    """One pass over the data in minibatches, rows in the order ``perm`` (permute and reshape once per epoch)."""
    minibatches = shuffled_minibatches(perm, data, config.num_minibatches)
    return jax.lax.scan(lambda t, mb: update_minibatch(config, learner, t, mb, part), train, minibatches)


def shuffles(config: Config, data: UpdateData, key):
    """The row order of each epoch, ``[num_epochs, rows]``: drawn once per update, for both parts."""
    return epoch_permutations(key, config.num_epochs, data.obs.shape[0])


def epochs(config: Config, learner: Learner, train: TrainState, data: UpdateData, perms, part: str = "joint"):
    """``num_epochs`` epochs, rows in the orders ``perms``; the new state and the mean loss statistics."""
    train, stats = jax.lax.scan(lambda t, perm: update_epoch(config, learner, t, data, perm, part), train, perms)
    return train, jax.tree.map(jnp.mean, stats)


def step_actor(config: Config, learner: Learner, train: TrainState, data: UpdateData, perms):
    """The actor's epochs (``separate_updates``): what acting next needs."""
    return epochs(config, learner, train, data, perms, "actor")


def fit_critic(config: Config, learner: Learner, train: TrainState, data: UpdateData, perms):
    return epochs(config, learner, train, data, perms, "critic")


def merge_stats(actor_stats, critic_stats):
    pi_loss, entropy, kl, clip_frac = actor_stats
    return pi_loss, critic_stats[0], entropy, kl, clip_frac


def parts(config: Config):
    """``separate_updates``: the actor's epochs, then the critic's (on host envs the critic's run on the
    second core during the next rollout; one seed on JAX envs runs them on two devices at once); None
    for the joint update."""
    return onpolicy.ActorCriticParts(step_actor, fit_critic, merge_stats, shuffles) if config.separate_updates else None


def learn(config: Config, learner: Learner, train: TrainState, batch: Batch, obs_stats, key):
    """``prepare`` then ``num_epochs`` epochs; returns the new state and mean loss statistics
    ``(pi_loss, v_loss, entropy, approx_kl, clip_frac)``."""
    if config.separate_updates:
        return onpolicy.learn_in_parts(parts(config), config, learner, train, batch, obs_stats, key)
    data = prepare(config, learner, train.params, batch, obs_stats)
    return epochs(config, learner, train, data, shuffles(config, data, key))


# ----------------------------------------------------------------------------- the drivers, bound to PPO

ALGO = onpolicy.Algorithm("ppo", STATS, make_learner, init_opt_state, learn, parts)
TrainResult = onpolicy.TrainResult
seed_params = onpolicy.seed_params
evaluate = onpolicy.evaluate


def train(config: Config, env, key, **kwargs) -> TrainResult:
    """Train PPO; see ``surrogate.core.onpolicy.train`` for the keyword arguments."""
    return onpolicy.train(ALGO, config, env, key, **kwargs)


def state_template(config: Config, env, key, seeds: int):
    return onpolicy.state_template(ALGO, config, env, key, seeds)
