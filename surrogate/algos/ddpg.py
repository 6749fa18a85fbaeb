"""Deep Deterministic Policy Gradient (Lillicrap et al. 2016, "Continuous control with deep reinforcement learning").

Reads top to bottom in the order it runs: config and presets; the actor ``mu(s)`` and the critic
``Q(s, a)`` (400-300 ReLU MLPs, the actor's tanh output scaled to the action bounds) and the initial state
(online and target networks, two Adams, an empty replay buffer); acting: ``mu(s)`` plus Ornstein-Uhlenbeck
noise (``core.noise``), whose state per env is the policy carry (the runtime zeroes it at episode ends);
then ``learn``: store the iteration's transitions and, once more than ``learning_starts`` are stored, take
``gradient_steps`` steps of Algorithm 1: the critic on the TD targets of the target networks (eqs. 4-5),
the actor along the deterministic policy gradient ``grad_a Q(s, a)|_{a = mu(s)} grad mu(s)`` (eq. 6),
then the soft target updates ``theta' <- tau theta + (1 - tau) theta'``. Actions are stored and seen by
the critic in the actor's ``[-1, 1]`` units (rllab's ``normalize()`` env, SB3's rescaling). Time-limit
truncations bootstrap from the final observation; terminations do not. The paper's batch normalisation
is not implemented (rllab's benchmark runs had none). The runtime collects the steps and runs the
iterations, on JAX or host envs (a NumPy ``host_act`` for MuJoCo rollouts).
"""
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from surrogate.algos.actor_critic import key_rng, positive
from surrogate.core import continuous_q
from surrogate.core.distributions import noise_from_bits, uniform_from_bits
from surrogate.core.noise import ou_step
from surrogate.core.replay import ReplayState, add_batch, init_replay, sample_indices
from surrogate.core.td import polyak
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm


@dataclass(frozen=True)
class Config:
    """DDPG hyperparameters. Defaults: the ``pendulum`` preset (learns gymnax Pendulum-v1 in 10k steps)."""

    env: str = "Pendulum-v1"
    total_steps: int = 10_000
    num_envs: int = 1
    num_steps: int = 1  # env steps per env per iteration (the train frequency)
    gradient_steps: int = 1  # gradient steps per iteration (Algorithm 1: one per env step)
    buffer_size: int = 200_000
    learning_starts: int = 1_000  # training once more than this many transitions are stored
    batch_size: int = 128
    gamma: float = 0.98
    tau: float = 5e-3  # soft target updates: theta' <- tau theta + (1 - tau) theta'
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    critic_weight_decay: float = 0.0  # L2 penalty 0.5 wd |W|^2 on the critic's kernels (the paper: 1e-2)
    reward_scale: float = 1.0  # the critic learns the returns of scale * r (rllab's DDPG runs: 0.1)
    hidden: tuple[int, ...] = (256, 256)  # of the actor and the critic, ReLU
    critic_action_layer: int = 0  # the action joins the input of this layer of Q (0: with s, SB3; 1: the paper's)
    final_init: float = 3e-3  # output layers U(+-final_init) (the paper); 0: U(+-1/sqrt(fan_in)) as the others
    noise: Literal["ou", "normal", "none"] = "normal"
    noise_sigma: float = 0.1  # in the actor's [-1, 1] units
    noise_theta: float = 0.15  # OU mean reversion per step
    random_warmup: bool = True  # uniform random actions before learning starts (SB3); False: mu + noise (rllab)

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    def validate(self) -> "Config":
        for name in ("total_steps", "num_envs", "num_steps", "gradient_steps", "buffer_size", "batch_size",
                     "actor_lr", "critic_lr", "reward_scale"):
            positive(self, name)
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"tau must be in (0, 1] (the online network's share of each soft target update; "
                              f"1: a copy; the paper: 0.001), got {self.tau!r}.")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma!r}.")
        if not 0.0 < self.noise_theta <= 1.0:
            raise ConfigError(f"noise_theta must be in (0, 1] (OU mean reversion per step), got {self.noise_theta!r}.")
        for name in ("noise_sigma", "critic_weight_decay", "final_init", "learning_starts"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if self.noise not in ("ou", "normal", "none"):
            raise ConfigError(f"noise must be 'ou', 'normal' or 'none', got {self.noise!r}.")
        if not self.hidden or min(self.hidden) <= 0:
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}.")
        if not 0 <= self.critic_action_layer < len(self.hidden):
            raise ConfigError(f"critic_action_layer must name a layer that has a hidden output, 0 to "
                              f"{len(self.hidden) - 1} for hidden={self.hidden}, got {self.critic_action_layer!r}.")
        if self.total_steps < self.steps_per_iteration:
            raise ConfigError(f"total_steps ({self.total_steps}) is smaller than one iteration (num_envs x num_steps "
                              f"= {self.steps_per_iteration}). Raise --total-steps or lower --num-envs/--num-steps.")
        if self.buffer_size < self.steps_per_iteration:
            raise ConfigError(f"buffer_size ({self.buffer_size}) must hold at least one iteration's transitions "
                              f"({self.steps_per_iteration}). Raise --buffer-size.")
        return self


PRESETS = {
    # Found here for gymnax Pendulum-v1 (rl-zoo3's DDPG Pendulum entry, smaller and faster): 256-256, batch 128,
    # both lrs 1e-3, tau 0.005, gamma 0.98, Gaussian noise 0.1, 1000 uniform random steps, 10k steps (3 of 3 seeds
    # scored -146 to -148 greedy; rl-zoo3 trains 20k steps, 10k of them random).
    "pendulum": Config(),
    # Duan et al. 2016's DDPG (rllab; paper-tables.md): Lillicrap et al.'s 400-300 nets with the action at the
    # critic's second layer and output layers U(+-3e-3), OU noise theta 0.15 sigma 0.3 from the first step (no
    # uniform warm-up), critic lr 1e-3, actor lr 1e-4, tau 1e-3, rewards x 0.1, batch 32, 10k transitions before
    # learning, replay 1e6, gamma 0.99. 25M steps: the batch methods' 500 x 50k (DDPG's count is not recorded).
    "rllab": Config(total_steps=25_000_000, buffer_size=1_000_000, learning_starts=10_000, batch_size=32, gamma=0.99,
                    tau=1e-3, actor_lr=1e-4, critic_lr=1e-3, reward_scale=0.1, hidden=(400, 300),
                    critic_action_layer=1, noise="ou", noise_sigma=0.3, random_warmup=False),
    # SB3 2.9.2's DDPG defaults (stable_baselines3/ddpg/ddpg.py, td3/policies.py): 400-300 actor and critic, the
    # action concatenated at the critic's input, PyTorch's init, lr 1e-3 for both, buffer 1e6, 100 uniform random
    # steps, batch 256, tau 0.005, gamma 0.99, one gradient step per env step, no action noise; for speed.
    "sb3": Config(buffer_size=1_000_000, learning_starts=100, batch_size=256, gamma=0.99, hidden=(400, 300),
                  final_init=0.0, noise="none"),
}
METRICS = ("critic_loss", "actor_loss", "q_mean", "buffer_size")


# ----------------------------------------------------------------------------- networks and state


def actor_apply(params: dict, obs):
    return continuous_q.actor_apply(params, obs, jnp)


def critic_apply(config: Config, params: dict, obs, action):
    return continuous_q.critic_apply(params, obs, action, config.critic_action_layer, jnp)


def action_scale(env):
    """``(low, half_range)``: the env's action is ``low + (a + 1) half_range`` for the actor's ``a`` in ``[-1, 1]``."""
    low, high = (np.broadcast_to(np.asarray(b, np.float32), (env.action_dim,)) for b in env.action_bounds)
    return low, 0.5 * (high - low)


def to_env(env, a):
    low, half = action_scale(env)
    return low + (a + 1.0) * half


class Transition(NamedTuple):
    """One stored step: the action in ``[-1, 1]`` units, the reward unscaled, ``terminal`` 1 only at a
    termination (a truncation bootstraps), ``next_obs`` the final observation at an episode's end."""

    obs: Any
    action: Any
    reward: Any
    terminal: Any
    next_obs: Any


class DDPGState(NamedTuple):
    """Everything a seed carries, checkpointed whole (the buffer included)."""

    actor: Any
    critic: Any
    actor_target: Any
    critic_target: Any
    actor_opt: Any
    critic_opt: Any
    replay: ReplayState
    steps: Any  # int32: env steps taken (all envs)


def init(config: Config, env, key) -> DDPGState:
    """On the host, nothing compiled: both networks drawn in NumPy, the targets copies, zeros elsewhere."""
    if env.discrete:
        raise ConfigError(f"DDPG needs continuous actions; {env.id} has discrete ones. Use dqn or ppo instead.")
    low, high = (np.asarray(b, np.float64) for b in env.action_bounds)
    if len(env.obs_shape) != 1 or not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ConfigError(f"DDPG here needs flat observation vectors and finite action bounds; {env.id} has "
                          f"observations {env.obs_shape} and actions in [{low}, {high}].")
    rng = key_rng(key, 1)
    obs_dim, act_dim = env.obs_shape[0], env.action_dim
    actor = continuous_q.init_mlp(rng, [obs_dim, *config.hidden], [*config.hidden, act_dim], config.final_init)
    critic = continuous_q.init_mlp(rng, continuous_q.critic_fan_ins(obs_dim, act_dim, config.hidden,
                                                                     config.critic_action_layer),
                                   [*config.hidden, 1], config.final_init)
    zeros = lambda tree: jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), tree)
    obs, scalar = np.zeros(obs_dim, np.float32), np.float32(0)
    replay = zeros(jax.eval_shape(lambda: init_replay(
        config.buffer_size, Transition(obs, np.zeros(act_dim, np.float32), scalar, scalar, obs))))
    return DDPGState(actor, critic, jax.tree.map(np.copy, actor), jax.tree.map(np.copy, critic),
                     zeros(jax.eval_shape(optax.adam(config.actor_lr).init, actor)),
                     zeros(jax.eval_shape(optax.adam(config.critic_lr).init, critic)), replay, np.zeros((), np.int32))


# ----------------------------------------------------------------------------- acting


def policy(config: Config, state: DDPGState):
    """The actor, and whether this iteration still acts uniformly at random (``random_warmup``)."""
    return state.actor, state.steps < config.learning_starts


def act_words(config: Config, env) -> int:
    return env.action_dim * (1 + config.random_warmup)  # a normal per action dim [, a uniform per action dim]


def initial_carry(config: Config, env, num_envs: int):
    return jnp.zeros((num_envs, env.action_dim), jnp.float32)  # the OU state, 0 at each episode's start


def explore(config: Config, a, x, eps, xp):
    """``clip(mu(s) + noise, -1, 1)`` and the new noise state: OU's ``x' = x + theta (0 - x) + sigma eps``
    (sec. 3; ``core.noise.ou_step``), Gaussian ``sigma eps`` (state unused), or none."""
    if config.noise == "ou":
        x = ou_step(x, eps, config.noise_theta, config.noise_sigma)
        a = a + x
    elif config.noise == "normal":
        a = a + config.noise_sigma * eps
    return xp.clip(a, -1.0, 1.0), x


def act(config: Config, env, deterministic: bool):
    """``act((actor, warmup), obs, noise_state, bits)``: ``mu(s)`` with exploration noise (normals from
    ``bits``), or uniform actions during a random warm-up; ``mu(s)`` alone if ``deterministic``."""
    A = env.action_dim

    def act_fn(params, obs, carry, bits):
        actor, warmup = params
        a = actor_apply(actor, obs)
        if not deterministic:
            a, carry = explore(config, a, carry, noise_from_bits(bits[..., :A], False), jnp)
            if config.random_warmup:
                a = jnp.where(warmup, 2.0 * uniform_from_bits(bits[..., A:]) - 1.0, a)
        return to_env(env, a), carry

    return act_fn


def host_act(config: Config, env, params, obs_stats, rng: np.random.Generator):
    """The same exploring policy in NumPy for host rollouts (a jitted call per step costs about half a
    MuJoCo step), with the noise from ``rng``."""
    actor, warmup = jax.device_get(params)

    def act_np(obs, carry):
        a = continuous_q.actor_apply(actor, np.asarray(obs, np.float32))
        a, carry = explore(config, a, np.asarray(carry, np.float32),
                           rng.standard_normal(a.shape, np.float32), np)
        if config.random_warmup and warmup:
            a = rng.uniform(-1.0, 1.0, a.shape).astype(np.float32)
        return to_env(env, a), carry

    return act_np


# ----------------------------------------------------------------------------- learning


def critic_targets(config: Config, actor_target, critic_target, mb: Transition):
    """``y = scale r + gamma (1 - terminal) Q'(s', mu'(s'))`` (eq. 5 with the target networks, Algorithm 1)."""
    next_q = critic_apply(config, critic_target, mb.next_obs, actor_apply(actor_target, mb.next_obs))
    return config.reward_scale * mb.reward + config.gamma * (1.0 - mb.terminal) * next_q


def critic_loss(config: Config, critic, mb: Transition, y):
    """``mean (Q(s, a) - y)^2`` (eq. 4) plus ``0.5 wd sum |W|^2`` over the kernels; with the mean ``Q(s, a)``."""
    q = critic_apply(config, critic, mb.obs, mb.action)
    l2 = sum(jnp.sum(layer["kernel"] ** 2) for layer in critic.values())
    return jnp.mean((q - y) ** 2) + 0.5 * config.critic_weight_decay * l2, q.mean()


def actor_loss(config: Config, actor, critic, obs):
    """``-mean Q(s, mu(s))``: its gradient is minus the deterministic policy gradient (eq. 6)."""
    return -critic_apply(config, critic, obs, actor_apply(actor, obs)).mean()


def soft_update(config: Config, target, online):
    """``theta' <- tau theta + (1 - tau) theta'`` (Algorithm 1; ``core.td.polyak`` keeps ``1 - tau``)."""
    return polyak(target, online, 1.0 - config.tau)


def update(config: Config, state: DDPGState, mb: Transition):
    """One step of Algorithm 1 on a minibatch: the critic, then the actor on the updated critic, then both
    targets. Returns the state and ``(critic_loss, actor_loss, q_mean)``."""
    y = jax.lax.stop_gradient(critic_targets(config, state.actor_target, state.critic_target, mb))
    (c_loss, q_mean), grads = jax.value_and_grad(critic_loss, argnums=1, has_aux=True)(config, state.critic, mb, y)
    updates, critic_opt = optax.adam(config.critic_lr).update(grads, state.critic_opt, state.critic)
    critic = optax.apply_updates(state.critic, updates)
    a_loss, grads = jax.value_and_grad(actor_loss, argnums=1)(config, state.actor, critic, mb.obs)
    updates, actor_opt = optax.adam(config.actor_lr).update(grads, state.actor_opt, state.actor)
    actor = optax.apply_updates(state.actor, updates)
    state = state._replace(actor=actor, critic=critic, actor_opt=actor_opt, critic_opt=critic_opt,
                           actor_target=soft_update(config, state.actor_target, actor),
                           critic_target=soft_update(config, state.critic_target, critic))
    return state, (c_loss, a_loss, q_mean)


def gradient_steps(config: Config, state: DDPGState, batches: Transition):
    """``update`` on each of the ``[gradient_steps, batch_size]`` minibatches in turn; the mean losses."""
    state, (c_loss, a_loss, q_mean) = jax.lax.scan(lambda s, mb: update(config, s, mb), state, batches)
    return state, (c_loss.mean(), a_loss.mean(), q_mean.mean())


def store(config: Config, env, state: DDPGState, b) -> DDPGState:
    """The rollout's ``[T, N]`` transitions into the buffer, actions in ``[-1, 1]`` units; only terminations
    are terminal (a truncated transition bootstraps from its final observation)."""
    flat, (low, half) = lambda x: x.reshape(-1, *x.shape[2:]), action_scale(env)
    items = Transition(flat(b.obs).astype(jnp.float32), (flat(b.actions) - low) / half - 1.0, b.rewards.reshape(-1),
                       b.terminations.reshape(-1).astype(jnp.float32), flat(b.next_obs).astype(jnp.float32))
    return state._replace(replay=add_batch(state.replay, items))


def learn(config: Config, env, state: DDPGState, experience, key):
    """Store the iteration's transitions, then, once more than ``learning_starts`` are stored, take
    ``gradient_steps`` updates on uniform minibatches (losses are 0 until then)."""
    state = store(config, env, state, experience.batch)
    steps = state.steps + config.steps_per_iteration
    shape = (config.gradient_steps, config.batch_size)
    idx = sample_indices(state.replay, key, shape[0] * shape[1]).reshape(shape)
    batches = jax.tree.map(lambda buf: buf[idx], state.replay.items)
    zero = jnp.zeros((), jnp.float32)
    learner, (c_loss, a_loss, q_mean) = jax.lax.cond(
        steps > config.learning_starts, lambda s, b: gradient_steps(config, s, b),
        lambda s, b: (s, (zero, zero, zero)), state._replace(replay=None), batches)
    metrics = dict(critic_loss=c_loss, actor_loss=a_loss, q_mean=q_mean,
                   buffer_size=state.replay.size.astype(jnp.float32))
    return learner._replace(replay=state.replay, steps=steps), metrics


ALGO = Algorithm("ddpg", Config, PRESETS, METRICS, init, policy, act, learn, act_words=act_words,
                 initial_carry=initial_carry, host_act=host_act)
