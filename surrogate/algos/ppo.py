"""Proximal Policy Optimization with the clipped surrogate objective (Schulman et al. 2017).

Reads top to bottom in the order it runs: config and presets, the learner (network + Adam), then
one update from a rollout: ``prepare`` (GAE, Schulman et al. 2016) and ``num_epochs`` epochs of
minibatch steps on the clipped surrogate (eq. 7) plus the value loss (eq. 9). The runtime
(``surrogate.runtime``) collects the rollouts and runs the iterations.
"""
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from surrogate.algos import actor_critic as ac
from surrogate.algos.actor_critic import Learner, OnPolicyConfig, TrainState, UpdateData, positive, prepare
from surrogate.core.distributions import make_dist
from surrogate.core.losses import clipped_surrogate_loss, normalize_advantages, value_loss
from surrogate.core.minibatches import epoch_permutations, shuffled_minibatches
from surrogate.core.networks import ActorCritic, join_params, split_params
from surrogate.errors import ConfigError
from surrogate.runtime import parts
from surrogate.runtime.contract import Algorithm


@dataclass(frozen=True)
class Config(OnPolicyConfig):
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
        rows = self.batch_size // self.num_minibatches
        if self.micro_batch and self.micro_batch < rows and (rows % self.micro_batch or self.separate_updates):
            raise ConfigError(f"micro_batch {self.micro_batch} must divide the minibatch of {rows} rows, without "
                              f"--separate-updates. Choose a divisor of {rows}, or --micro-batch 0.")
        if self.separate_updates and self.network in ("nature_cnn", "minatar_cnn"):
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
    # CleanRL's ppo_atari.py (Huang et al. 2022, "The 37 implementation details of PPO"): 8 envs x 128 steps,
    # 4 epochs x 4 minibatches of 256, Adam 2.5e-4 annealed, clip 0.1 (policy and value), entropy 0.01,
    # Nature CNN, no observation normalisation, episode ends (life losses included) terminal, 10M steps.
    # Micro-batches of 32 rows: XLA:CPU trains the CNN 2.3x faster per sample at 32 rows than at 256.
    "atari": Config(env="ALE/Pong-v5", total_steps=10_000_000, num_envs=8, num_steps=128, num_epochs=4,
                    num_minibatches=4, learning_rate=2.5e-4, clip_eps=0.1, ent_coef=0.01, vf_coef=0.5,
                    max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, network="nature_cnn",
                    bootstrap_truncation=False, micro_batch=32),
    # gymnax-blines' MinAtar PPO (agents/Breakout-MinAtar/ppo.yaml, the config behind gymnax's PPO figures):
    # 64 envs x 128 steps, 4 epochs x 8 minibatches, constant lr 5e-4, gamma 0.999, lambda 0.95, entropy
    # 0.01, a 256-256 ReLU MLP on the flattened 10x10xC frame, 10M steps (its 5% lr warm-up left out)
    "minatar": Config(env="Breakout-MinAtar", total_steps=10_000_000, num_envs=64, num_steps=128, num_epochs=4,
                      num_minibatches=8, learning_rate=5e-4, anneal_lr=False, gamma=0.999, gae_lambda=0.95,
                      ent_coef=0.01, network="mlp", hidden=(256, 256), activation="relu"),
}


# ----------------------------------------------------------------------------- learner


METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")


def make_learner(config: Config, env) -> Learner:
    grad_steps = config.num_updates * config.num_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.learning_rate, 0.0, grad_steps) if config.anneal_lr else config.learning_rate
    clip = (optax.clip_by_global_norm(config.max_grad_norm) if config.grad_clip == "global_norm"
            else optax.clip(config.max_grad_norm))
    # One flat parameter vector for clipping and Adam: fewer, larger XLA ops per minibatch step.
    optimizer = optax.flatten(optax.chain(clip, optax.adam(lr, eps=config.adam_eps)))
    return ac.make_learner(config, env, optimizer)


def init_opt_state(config: Config, env, params):
    optimizer = make_learner(config, env).optimizer
    if config.separate_updates:
        return tuple(ac.zeros_like_init(optimizer.init, part) for part in split_params(params))
    return ac.zeros_like_init(optimizer.init, params)


def init(config: Config, env, key) -> TrainState:
    return ac.init_state(init_opt_state, config, env, key)


# ----------------------------------------------------------------------------- losses


def policy_terms(config: Config, learner: Learner, dist_params, mb: UpdateData):
    """Clipped surrogate (eq. 7) minus the entropy bonus; with (pi_loss, entropy, approx_kl, clip_frac)."""
    dist = make_dist(dist_params, learner.discrete)
    adv = normalize_advantages(mb.advantages) if config.normalize_advantages else mb.advantages
    pi_loss, info = clipped_surrogate_loss(dist.log_prob(mb.actions), mb.old_log_probs, adv, config.clip_eps)
    entropy = dist.entropy().mean()
    return pi_loss - config.ent_coef * entropy, (pi_loss, entropy, info["approx_kl"], info["clip_frac"])


def value_terms(config: Config, values, mb: UpdateData):
    return value_loss(values, mb.old_values, mb.targets, config.clip_eps if config.clip_value else None)


def joint_loss(params, config: Config, learner: Learner, mb: UpdateData):
    """The joint loss (eq. 9 without the shared-parameter caveat): policy terms + vf_coef * value loss."""
    dist_params, values = learner.network.apply(params, mb.obs)
    pi_part, (pi_loss, entropy, kl, clip_frac) = policy_terms(config, learner, dist_params, mb)
    v_loss = value_terms(config, values, mb)
    return pi_part + config.vf_coef * v_loss, dict(policy_loss=pi_loss, value_loss=v_loss, entropy=entropy,
                                                   approx_kl=kl, clip_frac=clip_frac)


def actor_loss(params, config: Config, learner: Learner, mb: UpdateData):
    return actor_terms(config, learner, learner.network.apply(params, mb.obs, method=ActorCritic.policy), mb)


def actor_terms(config: Config, learner: Learner, dist_params, mb: UpdateData):
    """``actor_loss`` given the policy's outputs on the minibatch (recurrent PPO: from an unroll)."""
    loss, (pi_loss, entropy, kl, clip_frac) = policy_terms(config, learner, dist_params, mb)
    return loss, dict(policy_loss=pi_loss, entropy=entropy, approx_kl=kl, clip_frac=clip_frac)


def critic_loss(params, config: Config, learner: Learner, mb: UpdateData):
    return critic_terms(config, learner.network.apply(params, mb.obs, method=ActorCritic.value), mb)


def critic_terms(config: Config, values, mb: UpdateData):
    """``critic_loss`` given the values on the minibatch."""
    v_loss = value_terms(config, values, mb)
    return config.vf_coef * v_loss, dict(value_loss=v_loss)


# ----------------------------------------------------------------------------- one update


def shuffles(config: Config, data: UpdateData, key):
    """The row order of each epoch, ``[num_epochs, rows]``: drawn once per update."""
    return epoch_permutations(key, config.num_epochs, data.obs.shape[0])


def epochs(config: Config, loss, optimizer, train: TrainState, data: UpdateData, perms):
    """``num_epochs`` passes over ``data`` in minibatches (rows in the orders ``perms``), one gradient step
    of ``loss(params, minibatch) -> (loss, metrics)`` per minibatch; the mean metrics."""
    def minibatch_step(t: TrainState, mb):
        grads, metrics = ac.minibatch_grad(config, loss, t.params, mb)
        updates, opt_state = optimizer.update(grads, t.opt_state, t.params)
        return TrainState(optax.apply_updates(t.params, updates), opt_state), metrics

    def epoch(t: TrainState, perm):
        return jax.lax.scan(minibatch_step, t, shuffled_minibatches(perm, data, config.num_minibatches))

    train, metrics = jax.lax.scan(epoch, train, perms)
    return train, jax.tree.map(jnp.mean, metrics)


def learn(config: Config, env, train: TrainState, experience, key):
    """``prepare`` then ``num_epochs`` epochs on the joint loss (or, ``separate_updates``, the actor's
    epochs then the critic's, each with its own optimiser: ``PARTS``)."""
    if config.separate_updates:
        return parts.learn_in_parts(PARTS, config, env, train, experience, key)
    learner = make_learner(config, env)
    data = prepare(config, learner, train.params, experience)
    loss_config = ac.micro_loss_config(config)
    loss = lambda params, mb: joint_loss(params, loss_config, learner, mb)
    return epochs(config, loss, learner.optimizer, train, data, shuffles(config, data, key))


def host_update(config: Config, env):
    """``learn`` for host runs of CNN configs (``Algorithm.host_update``): the same update (the same shuffles,
    minibatches and steps), with the epochs' loop in Python around a jitted minibatch step, so that the
    convolutions' gradients sit at the top level of a program: inside a ``scan`` over minibatches XLA:CPU
    ran them ~15x slower (benchmarks/README.md, Atari). None for MLPs (their ``learn`` is jitted whole)."""
    learner = make_learner(config, env)
    if learner.network.network == "mlp" or config.separate_updates:
        return None
    loss_config = ac.micro_loss_config(config)
    loss = lambda params, mb: joint_loss(params, loss_config, learner, mb)

    def prepare_and_shuffle(train: TrainState, experience, key):
        data = prepare(config, learner, train.params, experience)
        return data, shuffles(config, data, key)

    def minibatch_step(t: TrainState, mb: UpdateData):
        grads, metrics = ac.minibatch_grad(config, loss, t.params, mb)
        updates, opt_state = learner.optimizer.update(grads, t.opt_state, t.params)
        return TrainState(optax.apply_updates(t.params, updates), opt_state), metrics

    first = jax.jit(prepare_and_shuffle)
    # an epoch's minibatches gathered in one program: a gather feeding the step's convolutions cost ~50% more
    shuffle = jax.jit(lambda data, perm: shuffled_minibatches(perm, data, config.num_minibatches))
    step = jax.jit(minibatch_step, donate_argnums=(0,))

    def update(train: TrainState, experience, key):
        data, perms = first(train, experience, key)
        metrics = []
        for perm in perms:  # epoch after epoch, minibatch after minibatch, as ``epochs``
            minibatches = shuffle(data, perm)
            for i in range(config.num_minibatches):
                train, m = step(train, jax.tree.map(lambda x: x[i], minibatches))
                metrics.append(m)
        return train, jax.tree.map(lambda *x: jnp.mean(jnp.stack(x)), *metrics)

    return update


# ----------------------------------------------------------------------------- separate updates


def prepare_parts(config: Config, env, train: TrainState, experience, key):
    data = prepare(config, make_learner(config, env), train.params, experience)
    return data, shuffles(config, data, key)


def step_actor(config: Config, env, train: TrainState, data: UpdateData, perms):
    """The actor's epochs with its own optimiser state (``opt_state[0]``): what acting next needs."""
    learner = make_learner(config, env)
    actor, critic = split_params(train.params)
    loss = lambda p, mb: actor_loss(join_params(p, critic), config, learner, mb)
    t, metrics = epochs(config, loss, learner.optimizer, TrainState(actor, train.opt_state[0]), data, perms)
    return TrainState(join_params(t.params, critic), (t.opt_state, train.opt_state[1])), metrics


def fit_critic(config: Config, env, train: TrainState, data: UpdateData, perms):
    learner = make_learner(config, env)
    actor, critic = split_params(train.params)
    loss = lambda p, mb: critic_loss(join_params(actor, p), config, learner, mb)
    t, metrics = epochs(config, loss, learner.optimizer, TrainState(critic, train.opt_state[1]), data, perms)
    return TrainState(join_params(actor, t.params), (train.opt_state[0], t.opt_state)), metrics


PARTS = parts.ActorCriticParts(prepare_parts, step_actor, fit_critic, ac.owners)
parts.register("ppo", lambda config: PARTS if config.separate_updates else None)

ALGO = Algorithm("ppo", Config, PRESETS, METRICS, init, ac.policy, ac.act, learn, act_words=ac.act_words,
                 host_act=ac.host_act, host_update=host_update)
