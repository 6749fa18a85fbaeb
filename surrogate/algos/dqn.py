"""Deep Q-Networks (Mnih et al. 2015, "Human-level control through deep reinforcement learning").

Reads top to bottom in the order it runs: config and presets; the Q-network and the initial state (online and
target parameters, Adam, an empty replay buffer); epsilon-greedy acting (Algorithm 1); then ``learn``: store the
iteration's transitions in the replay buffer and, once more than ``learning_starts`` are stored, take
``gradient_steps`` minibatch steps on the TD error against the target network (eq. 3; double Q-learning, van
Hasselt et al. 2016, eq. 4), then update the target (the paper's copy every C iterations, or Polyak averaging).
The runtime collects the steps and runs the iterations, on JAX or host envs. Variants: n-step targets
(``core.nstep``), prioritized replay (``core.prioritized``), Atari frames stored once (``core.frame_replay``),
CNN torsos (``core.q_networks``), soft DQN (``soft_tau``; ``algos.soft_dqn``).
"""
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from surrogate.algos.actor_critic import check_replay_fits, key_rng, positive
from surrogate.core.networks import numpy_policy
from surrogate.core import frame_replay
from surrogate.core.nstep import Transition, init_window, n_step_q_targets, rollout_transitions
from surrogate.core.q_networks import QNetwork, explore_from_bits, mlp_q_params_np, optimizer
from surrogate.core.prioritized import beta_schedule, new_priorities, sample_prioritized
from surrogate.core.replay import ReplayState, add_batch, add_masked, init_replay, sample_indices
from surrogate.core.td import huber_loss, polyak
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm


@dataclass(frozen=True)
class Config:
    """DQN hyperparameters. Defaults are rejax 0.1.3's CartPole config (``PRESETS["cartpole-rejax"]``)."""

    env: str = "CartPole-v1"
    total_steps: int = 100_000
    num_envs: int = 10
    num_steps: int = 1  # env steps per env per iteration (SB3's train_freq)
    buffer_size: int = 50_000
    learning_starts: int = 5_010  # training once more than this many transitions are stored; uniform actions before
    batch_size: int = 100
    gradient_steps: int = 5  # minibatch steps per iteration
    learning_rate: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.98  # fraction of the old target kept at each target update (0: a hard copy)
    target_update_interval: int = 1  # iterations between target updates
    eps_start: float = 1.0
    eps_end: float = 0.05
    exploration_fraction: float = 0.5  # epsilon: linear from eps_start to eps_end over this fraction of total_steps
    exploration_steps: int = 0  # > 0: over this many env steps after learning_starts instead (MinAtar's)
    double_q: bool = True
    loss: Literal["huber", "l2"] = "l2"  # l2: 0.5 * td_error^2; huber: Huber, delta 1 (the paper's error clipping)
    dueling: bool = True  # Q = V + A - mean(A) (Wang et al. 2016, eq. 9)
    network: Literal["mlp", "minatar_cnn", "nature_cnn"] = "mlp"  # CNNs: images, stored as uint8 (MinAtar, Atari)
    hidden: tuple[int, ...] = (64, 64)  # the MLP's widths (the CNNs have their papers' sizes)
    activation: Literal["tanh", "relu", "swish", "elu"] = "swish"
    opt: Literal["adam", "centered_rmsprop"] = "adam"  # centered_rmsprop: MinAtar's
    max_grad_norm: float = 10.0
    grad_clip: Literal["global_norm", "elementwise", "none"] = "elementwise"
    bootstrap_truncation: bool = False  # bootstrap time-limit truncations from Q(final obs); False: terminal
    n_step: int = 1  # n-step targets R + gamma^m (1 - term) V(s_{t+m}), m <= n (``core.nstep``)
    prioritized: bool = False  # proportional prioritized replay (Schaul et al. 2016), beta annealed to 1
    priority_alpha: float = 0.6
    priority_beta: float = 0.4
    soft_tau: float = 0.0  # > 0: soft DQN (Boltzmann acting at this temperature, soft value in the targets)
    frame_replay: bool = False  # stacked frames (Atari): store each frame once (``core.frame_replay``), 1/4 the memory

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    def validate(self) -> "Config":
        for name in ("total_steps", "num_envs", "num_steps", "buffer_size", "batch_size", "gradient_steps",
                     "learning_rate", "target_update_interval", "max_grad_norm"):
            positive(self, name)
        for name in ("gamma", "tau", "eps_start", "eps_end", "exploration_fraction", "priority_alpha", "priority_beta"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)!r}.")
        if self.tau == 1.0:
            raise ConfigError("tau = 1 would never update the target network. Use tau < 1 (0: a hard copy).")
        for name in ("learning_starts", "exploration_steps", "soft_tau", "n_step"):
            if getattr(self, name) < (name == "n_step"):
                raise ConfigError(f"{name} must be >= {int(name == 'n_step')}, got {getattr(self, name)!r}.")
        if self.total_steps < self.steps_per_iteration:
            raise ConfigError(f"total_steps ({self.total_steps}) is smaller than one iteration (num_envs x num_steps "
                              f"= {self.steps_per_iteration}). Raise --total-steps or lower --num-envs/--num-steps.")
        if self.buffer_size < self.steps_per_iteration:
            raise ConfigError(f"buffer_size ({self.buffer_size}) must hold at least one iteration's transitions "
                              f"({self.steps_per_iteration}). Raise --buffer-size.")
        if not self.hidden or min(self.hidden) <= 0:
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}.")
        if self.frame_replay and (problem := frame_replay.config_problem(self)):
            raise ConfigError(problem)
        return self


PRESETS = {
    # rejax 0.1.3's configs/gymnax/cartpole.yaml, its semantics: dueling 64-64 swish, Flax's init, 5 updates of batch
    # 100 per step of 10 envs, Polyak 0.98 every step, 0.5 TD^2, element-wise clip 10, timeouts terminal, updates once
    # > 5000 steps were taken before an iteration (5010 after). (rejax samples without replacement; here with, as SB3.)
    "cartpole-rejax": Config(),
    # rejax's config with truncations bootstrapped and a 128-128 net, steadier: the greedy policy after 100k steps
    # scored >= 475 for 39 of 40 seeds here (with rejax's 64-64 net 18 of 24; rejax 0.1.3 itself 6 of 8).
    "cartpole": Config(hidden=(128, 128), bootstrap_truncation=True),
    # rl-zoo3's hyperparams/dqn.yml CartPole-v1, SB3 2.9.2's semantics: 256-256 relu, no dueling or double Q, Huber,
    # global-norm clip 10, truncations bootstrapped; SB3's target copy every 10 env steps: every 256-step iteration.
    # (SB3 moves epsilon every env step and starts from PyTorch's init; here per iteration, Flax's init.)
    "cartpole-zoo": Config(total_steps=50_000, num_envs=1, num_steps=256, buffer_size=100_000, learning_starts=1000,
                           batch_size=64, gradient_steps=128, learning_rate=2.3e-3, tau=0.0, eps_end=0.04,
                           exploration_fraction=0.16, double_q=False, loss="huber", dueling=False, hidden=(256, 256),
                           activation="relu", grad_clip="global_norm", bootstrap_truncation=True),
    # MinAtar's DQN (Young & Tian 2019, examples/dqn.py): centered RMSprop (decay 0.95, eps 0.01), epsilon 1 -> 0.1
    # over the 100k frames after replay start, their CNN, every episode end terminal; the rest as written.
    "minatar": Config(env="Breakout-MinAtar", total_steps=5_000_000, num_envs=1, num_steps=1, buffer_size=100_000,
                      learning_starts=5_000, batch_size=32, gradient_steps=1, learning_rate=2.5e-4, tau=0.0,
                      target_update_interval=1_000, eps_end=0.1, exploration_steps=100_000, double_q=False,
                      loss="huber", dueling=False, network="minatar_cnn", opt="centered_rmsprop", grad_clip="none"),
    # CleanRL's dqn_atari.py (Pong 20.25 +- 0.41), squared TD error; its 1M replay with each frame once: 13 GiB, not 53
    "atari": Config(env="ALE/Pong-v5", total_steps=10_000_000, num_envs=1, num_steps=4, buffer_size=1_000_000,
                    learning_starts=80_000, batch_size=32, gradient_steps=1, learning_rate=1e-4, tau=0.0,
                    target_update_interval=250, eps_end=0.01, exploration_fraction=0.1, double_q=False,
                    dueling=False, network="nature_cnn", grad_clip="none", frame_replay=True),
}
METRICS = ("q_loss", "q_mean", "epsilon", "buffer_size", "replay_mismatches")


# ----------------------------------------------------------------------------- Q-network and state


def network(config: Config, env) -> QNetwork:
    return QNetwork(env.action_dim, tuple(config.hidden), config.activation, config.dueling,
                    getattr(config, "network", "mlp"))


def q_values(config: Config, env, params, obs):
    """``Q(obs, .)``, ``[..., num_actions]``; the MLP sees observations flattened, the CNNs as images."""
    if getattr(config, "network", "mlp") == "mlp":
        obs = obs.reshape(*obs.shape[:obs.ndim - len(env.obs_shape)], -1)
    return network(config, env).apply(params, obs.astype(jnp.float32))


jitted_q_values = jax.jit(q_values, static_argnums=(0, 1))


def init_params(config: Config, env, rng: np.random.Generator) -> dict:
    """``network(config, env).init``'s: an MLP's drawn in NumPy (nothing compiled), a CNN's by Flax, eagerly."""
    if config.network == "mlp":
        return mlp_q_params_np(rng, env.obs_shape, config.hidden, env.action_dim, config.dueling)
    key = jax.random.PRNGKey(rng.integers(2**31))
    return jax.device_get(network(config, env).init(key, jnp.zeros((1, *env.obs_shape))))


class DQNState(NamedTuple):
    """Everything a seed carries, checkpointed whole (the buffer included)."""

    params: Any  # the online network's
    target: Any  # the target network's
    opt_state: Any
    replay: ReplayState
    steps: Any  # int32: env steps taken (all envs)
    window: Any = ()  # n-step: core.nstep.Window of the last n - 1 steps; frame_replay: core.frame_replay.FrameCarry
    priorities: Any = ()  # prioritized: ReplayState of p^alpha [capacity] beside the buffer
    max_priority: Any = ()  # prioritized: the largest p^alpha so far (new items get it)


def init(config: Config, env, key) -> DQNState:
    """On the host, nothing compiled: the online network drawn in NumPy, the target a copy, zeros elsewhere."""
    if not env.discrete:
        raise ConfigError(f"DQN needs discrete actions; {env.id} has continuous ones. Use ppo or trpo instead.")
    params = init_params(config, env, key_rng(key, 1))
    zeros = lambda tree: jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), tree)
    opt_state = zeros(jax.eval_shape(optimizer(config).init, params))  # Adam's moments and count start at 0
    obs = np.zeros(env.obs_shape, np.uint8 if config.network != "mlp" else np.float32)  # images: uint8
    item = Transition(obs, np.zeros((), np.int32), np.float32(0), np.float32(0), obs, np.zeros((), np.int32))
    window = () if config.n_step == 1 else zeros(jax.eval_shape(
        lambda: init_window(config.n_step, config.num_envs, env.obs_shape, obs.dtype)))
    if config.frame_replay:  # a frame per slot; in the window, each env's last observation (core.frame_replay)
        item, window = frame_replay.example_item(env.obs_shape, obs.dtype), zeros(jax.eval_shape(
            lambda: frame_replay.init_carry(config.num_envs, env.obs_shape, obs.dtype)))
    check_replay_fits(config.buffer_size, item)
    replay = zeros(jax.eval_shape(lambda: init_replay(config.buffer_size, item)))
    prio = zeros(jax.eval_shape(lambda: init_replay(config.buffer_size, np.float32(0)))) if config.prioritized else ()
    return DQNState(params, jax.tree.map(np.copy, params), opt_state, replay, np.zeros((), np.int32), window, prio,
                    np.ones((), np.float32) if config.prioritized else ())


# ----------------------------------------------------------------------------- acting


def epsilon(config: Config, steps):
    """Linear from eps_start to eps_end over ``exploration_fraction * total_steps`` env steps (or ``exploration_steps``
    after ``learning_starts``), then constant (Mnih et al. 2015, Extended Data Table 1); 1 before learning starts."""
    span = getattr(config, "exploration_steps", 0)
    frac = (jnp.clip((steps - config.learning_starts) / span, 0.0, 1.0) if span > 0
            else jnp.minimum(1.0, steps / max(config.exploration_fraction * config.total_steps, 1.0)))
    eps = config.eps_start + frac * (config.eps_end - config.eps_start)
    return jnp.where(steps + config.steps_per_iteration > config.learning_starts, eps, 1.0)


def policy(config: Config, state: DQNState):
    return state.params, epsilon(config, state.steps)


def act_words(config: Config, env) -> int:
    return 2 + (env.action_dim if config.soft_tau > 0 else 0)  # coin, random action, [Gumbel noise per action]


def act(config: Config, env, deterministic: bool):
    """``act(params, obs, carry, bits)``: epsilon-greedy on Q, or (soft DQN) a Boltzmann sample with epsilon
    on top (``core.q_networks.explore_from_bits``); greedy if ``deterministic``."""
    def act_fn(params, obs, carry, bits):
        q = q_values(config, env, params[0], obs)
        return (q.argmax(-1) if deterministic else explore_from_bits(q, bits, params[1], config.soft_tau)), carry

    return act_fn


def host_act(config: Config, env, params, obs_stats, rng: np.random.Generator):
    """NumPy epsilon-greedy (or Boltzmann) host acting, no jitted call per step for an MLP: the torso and the
    advantage (or Q) head suffice (``V + A - mean A`` and ``A`` differ by a constant). CNNs: jitted."""
    tree, eps = jax.device_get(params)
    if config.network == "mlp":
        head = {f"Dense_{len(config.hidden)}": tree["params"]["Dense_1" if config.dueling else "Dense_0"]}
        forward = numpy_policy({"params": {"actor": {**tree["params"]["MLP_0"], **head}}}, config.activation)
    else:
        forward = lambda obs: np.asarray(jitted_q_values(config, env, tree, obs))

    def act_np(obs, carry):
        q = forward(obs.reshape(obs.shape[0], -1) if config.network == "mlp" else obs)
        q = q if config.soft_tau == 0 else q / config.soft_tau + rng.gumbel(size=q.shape)
        explore = rng.random(obs.shape[0]) < eps
        return np.where(explore, rng.integers(env.action_dim, size=obs.shape[0]), q.argmax(-1)), carry

    return act_np


# ----------------------------------------------------------------------------- learning


def td_targets(config: Config, env, params, mb: Transition, next_q_target):
    """``y = r + gamma^m (1 - terminal) V(s')`` (``core.nstep.n_step_q_targets``: DQN's max, double Q's
    online argmax, or soft DQN's soft value of the target network's ``next_q_target``). Not differentiated."""
    next_q_online = q_values(config, env, params, mb.next_obs) if config.double_q and not config.soft_tau else None
    return jax.lax.stop_gradient(n_step_q_targets(mb.reward, mb.terminal, mb.horizon, next_q_target, next_q_online,
                                                  gamma=config.gamma, soft_tau=config.soft_tau))


def td_loss(config: Config, env, params, mb: Transition, next_q_target, weights=None, errors: bool = False):
    """The mean of ``0.5 err^2`` or Huber(err) (the paper's error clipping) of the TD errors ``Q(s, a) - y``,
    times prioritized replay's ``weights``; with the mean ``Q(s, a)`` (and the errors if ``errors``)."""
    q = jnp.take_along_axis(q_values(config, env, params, mb.obs), mb.action[:, None], axis=-1)[:, 0]
    err = q - td_targets(config, env, params, mb, next_q_target)
    loss = huber_loss(err) if config.loss == "huber" else 0.5 * err**2
    return (loss if weights is None else weights * loss).mean(), ((q.mean(), err) if errors else q.mean())


def minibatches(config: Config, state: DQNState, key):
    """``gradient_steps`` minibatches at once, ``([gradient_steps, batch_size, ...], slots, weights)``, drawn uniformly
    with replacement, or by the priorities at the iteration's start with their importance weights (exact for one
    gradient step per iteration, as in the MinAtar preset); frame replay: stacks rebuilt from single frames."""
    shape, replay = (config.gradient_steps, config.batch_size), state.replay
    if config.frame_replay:
        return frame_replay.minibatches(replay, state.window, key, shape, config.num_envs)
    if config.prioritized:
        beta = beta_schedule(config.priority_beta, state.steps / config.total_steps)
        idx, weights = sample_prioritized(state.priorities.items, replay.size, key, shape, beta)
    else:
        idx, weights = sample_indices(replay, key, shape[0] * shape[1]).reshape(shape), jnp.ones(shape)
    return jax.tree.map(lambda buf: buf[idx], replay.items), idx, weights


def gradient_steps(config: Config, env, state: DQNState, batches):
    """One optimiser step per minibatch (the target network's Q-values of all next states in one batched
    pass); prioritized: each step writes its minibatch's new priorities ``(|err| + 1e-6)^alpha``."""
    batches, slots, weights = batches
    next_q_target = q_values(config, env, state.target, batches.next_obs)
    opt = optimizer(config)

    def step(carry, inputs):
        params, opt_state, prio, max_p = carry
        mb, nq, idx, w = inputs
        grad_fn = jax.value_and_grad(lambda p: td_loss(config, env, p, mb, nq, w, True), has_aux=True)
        (loss, (q_mean, err)), grads = grad_fn(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        if config.prioritized:
            p = new_priorities(err, config.priority_alpha)
            prio, max_p = prio._replace(items=prio.items.at[idx].set(p)), jnp.maximum(max_p, p.max())
        return (optax.apply_updates(params, updates), opt_state, prio, max_p), (loss, q_mean)

    carry = (state.params, state.opt_state, state.priorities, state.max_priority)
    carry, (loss, q_mean) = jax.lax.scan(step, carry, (batches, next_q_target, slots, weights))
    return carry, loss.mean(), q_mean.mean()


def store(config: Config, state: DQNState, b) -> DQNState:
    """The rollout's transitions into the buffer: one-step ones, or n-step ones (``core.nstep``, ``n - 1``
    steps late) through the window; prioritized: at the largest priority so far."""
    terminal = (b.terminations if config.bootstrap_truncation else b.dones).astype(jnp.float32)
    if config.frame_replay:
        items, carry = frame_replay.compress(state.window, b.obs, b.actions, b.rewards, terminal, b.next_obs)
        return state._replace(replay=add_batch(state.replay, items), window=carry)
    items, valid, window = rollout_transitions(state.window, b.obs, b.actions, b.rewards, terminal, b.dones,
                                               b.next_obs, config.gamma, config.n_step)
    add = add_batch if valid is None else (lambda s, x: add_masked(s, x, valid))
    prio = add(state.priorities, jnp.full(b.rewards.size, state.max_priority)) if config.prioritized else ()
    return state._replace(replay=add(state.replay, Transition(*items)), window=window, priorities=prio)


def learn(config: Config, env, state: DQNState, experience, key):
    """Store the iteration's transitions, train once more than ``learning_starts`` are stored (``q_loss``
    and ``q_mean`` are 0 until then), update the target network every ``target_update_interval`` iterations."""
    state = store(config, state, experience.batch)
    steps = state.steps + config.steps_per_iteration
    zero = jnp.zeros((), jnp.float32)  # the losses reported before learning starts
    learner = state._replace(replay=None)  # the cond's operands: no buffer
    (params, opt_state, prio, max_p), loss, q_mean = jax.lax.cond(
        steps > config.learning_starts, lambda s, b: gradient_steps(config, env, s, b),
        lambda s, b: ((s.params, s.opt_state, s.priorities, s.max_priority), zero, zero), learner,
        minibatches(config, state, key))
    update = (steps // config.steps_per_iteration) % config.target_update_interval == 0
    target = jax.tree.map(lambda new, old: jnp.where(update, new, old), polyak(state.target, params, config.tau),
                          state.target)
    metrics = dict(q_loss=loss, q_mean=q_mean, epsilon=epsilon(config, state.steps), replay_mismatches=
                   frame_replay.mismatches(state.window), buffer_size=state.replay.size.astype(jnp.float32))
    return DQNState(params, target, opt_state, state.replay, steps, state.window, prio, max_p), metrics


ALGO = Algorithm("dqn", Config, PRESETS, METRICS, init, policy, act, learn, act_words=act_words, host_act=host_act)

