"""Deep Q-Networks (Mnih et al. 2015, "Human-level control through deep reinforcement learning").

Reads top to bottom in the order it runs: config and presets; the Q-network and the initial state
(online and target parameters, Adam, an empty replay buffer); epsilon-greedy acting (Algorithm 1);
then ``learn``: store the iteration's transitions in the replay buffer and, once more than
``learning_starts`` are stored, take ``gradient_steps`` minibatch steps on the TD error against the
target network (eq. 3; double Q-learning, van Hasselt et al. 2016, eq. 4), then update the target
(the paper's copy every C iterations, or Polyak averaging). The runtime (``surrogate.runtime``)
collects the steps and runs the iterations, on JAX or host envs.
"""
import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from surrogate.algos.actor_critic import key_rng, positive
from surrogate.core.networks import MLP, numpy_policy
from surrogate.core.replay import ReplayState, add_batch, init_replay, sample_indices
from surrogate.core.td import huber_loss, polyak, q_targets
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm


@dataclass(frozen=True)
class Config:
    """DQN hyperparameters. Defaults are rejax 0.1.3's CartPole config (``PRESETS["cartpole-rejax"]``)."""

    env: str = "CartPole-v1"
    total_steps: int = 100_000
    num_envs: int = 10
    num_steps: int = 1
    """env steps per env per iteration (SB3's train_freq)"""
    buffer_size: int = 50_000
    learning_starts: int = 5_010
    """gradient steps start in the first iteration after which more than this many transitions are
    stored; until then actions are uniformly random"""
    batch_size: int = 100
    gradient_steps: int = 5
    """minibatch steps per iteration"""
    learning_rate: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.98
    """fraction of the old target kept at each target update (0: a hard copy)"""
    target_update_interval: int = 1
    """iterations between target updates"""
    eps_start: float = 1.0
    eps_end: float = 0.05
    exploration_fraction: float = 0.5
    """epsilon goes linearly from eps_start to eps_end over this fraction of total_steps"""
    double_q: bool = True
    loss: Literal["huber", "l2"] = "l2"
    """l2: 0.5 * td_error^2; huber: Huber with delta 1 (the paper's error clipping)"""
    dueling: bool = True
    """Q = V + A - mean(A) (Wang et al. 2016, eq. 9)"""
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "swish", "elu"] = "swish"
    max_grad_norm: float = 10.0
    grad_clip: Literal["global_norm", "elementwise"] = "elementwise"
    bootstrap_truncation: bool = False
    """bootstrap time-limit truncations from Q(final obs); False treats them as terminal"""

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    def validate(self) -> "Config":
        for name in ("total_steps", "num_envs", "num_steps", "buffer_size", "batch_size", "gradient_steps",
                     "learning_rate", "target_update_interval", "max_grad_norm"):
            positive(self, name)
        for name in ("gamma", "tau", "eps_start", "eps_end", "exploration_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)!r}.")
        if self.tau == 1.0:
            raise ConfigError("tau = 1 would never update the target network. Use tau < 1 (0: a hard copy).")
        if self.learning_starts < 0:
            raise ConfigError(f"learning_starts must be >= 0, got {self.learning_starts!r}.")
        if self.total_steps < self.steps_per_iteration:
            raise ConfigError(f"total_steps ({self.total_steps}) is smaller than one iteration (num_envs x num_steps "
                              f"= {self.steps_per_iteration}). Raise --total-steps or lower --num-envs/--num-steps.")
        if self.buffer_size < self.steps_per_iteration:
            raise ConfigError(f"buffer_size ({self.buffer_size}) must hold at least one iteration's transitions "
                              f"({self.steps_per_iteration}). Raise --buffer-size.")
        if not self.hidden or min(self.hidden) <= 0:
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}.")
        return self


PRESETS = {
    # rejax 0.1.3's configs/gymnax/cartpole.yaml with its semantics: dueling 64-64 swish net, Flax's
    # default init, 5 updates of batch 100 per step of 10 envs, Polyak 0.98 after every step, 0.5 *
    # squared TD error, element-wise gradient clip 10, timeouts terminal. rejax updates once more than
    # fill_buffer = 5000 steps were taken before an iteration: 5010 after it. (rejax samples minibatches
    # without replacement; here with, as SB3 and the paper.)
    "cartpole-rejax": Config(),
    # rejax's config with truncations bootstrapped and a 128-128 net, steadier: measured here, the greedy
    # policy after 100k steps scored >= 475 for 39 of 40 seeds (with rejax's 64-64 net 18 of 24; rejax
    # 0.1.3 itself at its config 6 of 8).
    "cartpole": Config(hidden=(128, 128), bootstrap_truncation=True),
    # rl-zoo3's hyperparams/dqn.yml CartPole-v1 with SB3 2.9.2's semantics: 256-256 relu, no dueling or
    # double Q, Huber loss, global-norm clip 10, truncations bootstrapped. SB3's target_update_interval
    # of 10 env steps copies the target during each 256-step collection, so each iteration's gradient
    # steps see the online network of its start: a copy every iteration. (SB3 moves epsilon every env
    # step and starts from PyTorch's default init; here epsilon moves per iteration, Flax's init.)
    "cartpole-zoo": Config(total_steps=50_000, num_envs=1, num_steps=256, buffer_size=100_000, learning_starts=1000,
                           batch_size=64, gradient_steps=128, learning_rate=2.3e-3, tau=0.0, eps_end=0.04,
                           exploration_fraction=0.16, double_q=False, loss="huber", dueling=False, hidden=(256, 256),
                           activation="relu", grad_clip="global_norm", bootstrap_truncation=True),
}

METRICS = ("q_loss", "q_mean", "epsilon", "buffer_size")


# ----------------------------------------------------------------------------- Q-network and state


class QNetwork(nn.Module):
    """An MLP torso with a linear Q head, or the dueling heads V and A (Wang et al. 2016, eq. 9)."""

    action_dim: int
    hidden: tuple
    activation: str
    dueling: bool

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden, self.activation)(obs)
        if not self.dueling:
            return nn.Dense(self.action_dim)(x)
        value, advantage = nn.Dense(1)(x), nn.Dense(self.action_dim)(x)
        return value + advantage - advantage.mean(-1, keepdims=True)


def network(config: Config, env) -> QNetwork:
    return QNetwork(env.action_dim, tuple(config.hidden), config.activation, config.dueling)


def q_values(config: Config, env, params, obs):
    """``Q(obs, .)``, ``[..., num_actions]``; observations are flattened."""
    obs = obs.reshape(*obs.shape[:obs.ndim - len(env.obs_shape)], -1).astype(jnp.float32)
    return network(config, env).apply(params, obs)


def lecun_normal_np(rng: np.random.Generator, shape) -> np.ndarray:
    """Flax's default ``Dense`` kernel init (rejax's): a normal truncated to +-2 std with variance 1 / fan_in."""
    z = rng.standard_normal(shape)
    while (bad := np.abs(z) > 2).any():
        z[bad] = rng.standard_normal(int(bad.sum()))
    return (z * np.sqrt(1.0 / shape[0]) / 0.87962566103423978).astype(np.float32)


def init_params(config: Config, env, rng: np.random.Generator) -> dict:
    """What ``network(config, env).init`` gives (a test checks the structure), drawn in NumPy: nothing
    traced or compiled. Zero biases; the torso ``MLP_0``, then the Q head, or the V and A heads."""
    sizes = [math.prod(env.obs_shape), *config.hidden]
    dense = lambda a, b: {"kernel": lecun_normal_np(rng, (a, b)), "bias": np.zeros(b, np.float32)}
    torso = {f"Dense_{i}": dense(a, b) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}
    heads = (1, env.action_dim) if config.dueling else (env.action_dim,)
    return {"params": {"MLP_0": torso, **{f"Dense_{i}": dense(sizes[-1], n) for i, n in enumerate(heads)}}}


class Transition(NamedTuple):
    """One replay item (Mnih et al. 2015, Algorithm 1: ``(s_t, a_t, r_t, s_{t+1})`` and whether s_{t+1} ends it)."""

    obs: Any
    action: Any
    reward: Any
    terminal: Any  # float: no bootstrap from next_obs
    next_obs: Any


class DQNState(NamedTuple):
    """Everything a seed carries, checkpointed whole (the buffer included)."""

    params: Any  # the online network's
    target: Any  # the target network's
    opt_state: Any
    replay: ReplayState
    steps: Any  # int32: env steps taken (all envs)


def optimizer(config: Config):
    """Adam (Kingma & Ba 2015) after clipping the gradient's global norm or each element (rejax)."""
    clip = (optax.clip_by_global_norm(config.max_grad_norm) if config.grad_clip == "global_norm"
            else optax.clip(config.max_grad_norm))
    return optax.chain(clip, optax.adam(config.learning_rate))


def init(config: Config, env, key) -> DQNState:
    """On the host, nothing compiled: the online network drawn in NumPy, the target a copy, zeros elsewhere."""
    if not env.discrete:
        raise ConfigError(f"DQN needs discrete actions; {env.id} has continuous ones. Use ppo or trpo instead.")
    params = init_params(config, env, key_rng(key, 1))
    zeros = lambda tree: jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), tree)
    opt_state = zeros(jax.eval_shape(optimizer(config).init, params))  # Adam's moments and count start at 0
    item = Transition(np.zeros(env.obs_shape, np.float32), np.zeros((), np.int32), np.float32(0), np.float32(0),
                      np.zeros(env.obs_shape, np.float32))
    replay = zeros(jax.eval_shape(lambda: init_replay(config.buffer_size, item)))
    return DQNState(params, jax.tree.map(np.copy, params), opt_state, replay, np.zeros((), np.int32))


# ----------------------------------------------------------------------------- acting


def epsilon(config: Config, steps):
    """Linear from eps_start to eps_end over ``exploration_fraction * total_steps`` env steps, then
    constant (Mnih et al. 2015, Extended Data Table 1); 1 (uniform actions) before learning starts."""
    frac = jnp.minimum(1.0, steps / max(config.exploration_fraction * config.total_steps, 1.0))
    eps = config.eps_start + frac * (config.eps_end - config.eps_start)
    return jnp.where(steps + config.steps_per_iteration > config.learning_starts, eps, 1.0)


def policy(config: Config, state: DQNState):
    """What acting needs: the online parameters and this iteration's epsilon."""
    return state.params, epsilon(config, state.steps)


def act_words(config: Config, env) -> int:
    return 2  # one for the coin, one for the random action


def act(config: Config, env, deterministic: bool):
    """``act(params, obs, carry, bits)``: epsilon-greedy on Q, or greedy."""
    def act_fn(params, obs, carry, bits):
        net_params, eps = params
        greedy = q_values(config, env, net_params, obs).argmax(-1)
        if deterministic:
            return greedy, carry
        # a uniform in [0, 1) from the first word's 23 high bits as a mantissa (as jax.random.uniform)
        unit = jax.lax.bitcast_convert_type((bits[..., 0] >> 9) | np.uint32(0x3F800000), jnp.float32) - 1.0
        return jnp.where(unit < eps, (bits[..., 1] % env.action_dim).astype(greedy.dtype), greedy), carry

    return act_fn


def host_act(config: Config, env, params, obs_stats, rng: np.random.Generator):
    """NumPy epsilon-greedy for host rollouts (``Algorithm.host_act``): no jitted call per step. The
    greedy action needs only the torso and the advantage (or Q) head: argmax(V + A - mean A) = argmax A."""
    tree, eps = jax.device_get(params)
    tree = tree["params"]
    head = tree["Dense_1" if config.dueling else "Dense_0"]
    forward = numpy_policy({"params": {"actor": {**tree["MLP_0"], f"Dense_{len(config.hidden)}": head}}},
                           config.activation)

    def act_np(obs, carry):
        greedy = forward(obs.reshape(obs.shape[0], -1)).argmax(-1)
        explore = rng.random(obs.shape[0]) < eps
        return np.where(explore, rng.integers(env.action_dim, size=obs.shape[0]), greedy), carry

    return act_np


# ----------------------------------------------------------------------------- learning


def td_targets(config: Config, env, params, mb: Transition, next_q_target):
    """``y = r + gamma (1 - terminal) Q_target(s', a*)`` (Mnih et al. 2015, eq. 3) with ``a*`` the target
    network's argmax, or the online network's with double Q (van Hasselt et al. 2016, eq. 4);
    ``next_q_target``: the target network's ``Q(s', .)``. Not differentiated."""
    next_q_online = q_values(config, env, params, mb.next_obs) if config.double_q else None
    return jax.lax.stop_gradient(q_targets(mb.reward, mb.terminal, next_q_target, next_q_online, gamma=config.gamma))


def td_loss(config: Config, env, params, mb: Transition, next_q_target):
    """The mean loss of the TD errors ``Q(s, a) - y`` of a minibatch: ``0.5 err^2`` or Huber (the paper's
    error clipping); with the mean ``Q(s, a)``."""
    y = td_targets(config, env, params, mb, next_q_target)
    q = jnp.take_along_axis(q_values(config, env, params, mb.obs), mb.action[:, None], axis=-1)[:, 0]
    err = q - y
    loss = huber_loss(err) if config.loss == "huber" else 0.5 * err**2
    return loss.mean(), q.mean()


def minibatches(config: Config, replay: ReplayState, key) -> Transition:
    """``gradient_steps`` minibatches drawn uniformly from the buffer (with replacement), all at once:
    ``[gradient_steps, batch_size, ...]``."""
    idx = sample_indices(replay, key, config.gradient_steps * config.batch_size)
    return jax.tree.map(lambda buf: buf[idx].reshape(config.gradient_steps, config.batch_size, *buf.shape[1:]),
                        replay.items)


def gradient_steps(config: Config, env, state: DQNState, batches: Transition):
    """One Adam step per minibatch; the target network's Q-values of every minibatch's next states come
    from one batched forward pass (the target is fixed during an iteration's steps)."""
    next_q_target = q_values(config, env, state.target, batches.next_obs)
    opt = optimizer(config)

    def step(carry, inputs):
        params, opt_state = carry
        mb, nq = inputs
        (loss, q_mean), grads = jax.value_and_grad(lambda p: td_loss(config, env, p, mb, nq), has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (loss, q_mean)

    (params, opt_state), (loss, q_mean) = jax.lax.scan(step, (state.params, state.opt_state), (batches, next_q_target))
    return params, opt_state, loss.mean(), q_mean.mean()


def learn(config: Config, env, state: DQNState, experience, key):
    """Store the iteration's transitions, train once more than ``learning_starts`` are stored (the
    metrics ``q_loss`` and ``q_mean`` are 0 until then), then update the target network every
    ``target_update_interval`` iterations."""
    b = experience.batch
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    terminal = b.terminations if config.bootstrap_truncation else b.dones
    new = Transition(flat(b.obs), flat(b.actions), flat(b.rewards), flat(terminal).astype(jnp.float32),
                     flat(b.next_obs))
    state = state._replace(replay=add_batch(state.replay, new))
    steps = state.steps + config.steps_per_iteration
    zero = jnp.zeros((), jnp.float32)  # the losses reported before learning starts
    learner = state._replace(replay=None)  # the cond's operands: no buffer
    params, opt_state, loss, q_mean = jax.lax.cond(
        steps > config.learning_starts, lambda s, b: gradient_steps(config, env, s, b),
        lambda s, b: (s.params, s.opt_state, zero, zero), learner, minibatches(config, state.replay, key))
    update = (steps // config.steps_per_iteration) % config.target_update_interval == 0
    target = jax.tree.map(lambda new, old: jnp.where(update, new, old), polyak(state.target, params, config.tau),
                          state.target)
    metrics = dict(q_loss=loss, q_mean=q_mean, epsilon=epsilon(config, state.steps),
                   buffer_size=state.replay.size.astype(jnp.float32))
    return DQNState(params, target, opt_state, state.replay, steps), metrics


ALGO = Algorithm("dqn", Config, PRESETS, METRICS, init, policy, act, learn, act_words=act_words, host_act=host_act)
