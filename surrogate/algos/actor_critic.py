"""What the on-policy actor-critic methods here (PPO, TRPO, TNPG, VPG, recurrent PPO) share: their common
hyperparameters, the learner (network, optimiser), initial state, acting functions, and GAE on a
rollout (``prepare``). Each method adds its update; the runtime runs it.
"""
import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from surrogate._jax_setup import FAST, RUN_ONCE
from surrogate.core.advantages import gae
from surrogate.core.distributions import draw_noise, make_dist, mode, noise_from_bits, sample_with_noise
from surrogate.core.losses import normalize_advantages
from surrogate.core.networks import ActorCritic, join_params, mlp_params_np, numpy_policy, split_params
from surrogate.errors import ConfigError
from surrogate.runtime.devices import cached
from surrogate.runtime.rollout import Batch, Experience, policy_input, rollout_spec


@dataclass(frozen=True)
class OnPolicyConfig:
    """Hyperparameters every on-policy method here has: environment, batch, GAE, normalisation, network."""

    env: str = "CartPole-v1"
    total_steps: int = 100_000
    num_envs: int = 8
    """parallel environments per seed"""
    num_steps: int = 32
    """rollout length per environment (horizon T)"""
    gamma: float = 0.98
    gae_lambda: float = 0.8
    normalize_advantages: bool = True
    normalize_obs: bool = False
    normalize_reward: bool = False
    bootstrap_truncation: bool = True
    """bootstrap time-limit truncations from V(final obs); False treats them as terminal"""
    network: Literal["auto", "mlp", "nature_cnn", "minatar_cnn"] = "auto"
    """auto: Nature CNN for image observations of at least 36x36 (Atari), MinAtar CNN for smaller images, MLP otherwise"""
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "swish", "elu"] = "tanh"
    log_std_init: float = 0.0
    micro_batch: int = 0
    """rows per pass of the network (0: all at once): forward passes over a whole rollout run in chunks of
    this many rows and PPO sums each minibatch's gradient over micro-batches of it (the same math; XLA:CPU's
    convolutions are fastest per sample at 32-64 rows: ../shared/design.md)"""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.batch_size)

    def validate(self):
        for name in ("total_steps", "num_envs", "num_steps"):
            positive(self, name)
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {self.gamma!r}.")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda must be in [0, 1], got {self.gae_lambda!r}.")
        if self.total_steps < self.batch_size:
            raise ConfigError(f"total_steps ({self.total_steps}) is smaller than one batch ({self.batch_size}). "
                              f"Raise --total-steps or lower --num-envs/--num-steps.")
        if not self.hidden or min(self.hidden) <= 0:
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}.")
        if self.micro_batch < 0:
            raise ConfigError(f"micro_batch must be >= 0 (0: no micro-batches), got {self.micro_batch!r}.")
        return self


def positive(config, name: str):
    if not getattr(config, name) > 0:
        raise ConfigError(f"{name} must be > 0, got {getattr(config, name)!r}. Pass a positive --{name.replace('_', '-')}.")


def check_replay_fits(capacity: int, example_item):
    """A clear error, before anything is allocated, when a replay buffer of ``capacity`` items like
    ``example_item`` would not fit in this machine's memory (with 20% to spare)."""
    item_bytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(example_item))
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if capacity * item_bytes > 0.8 * have:
        raise ConfigError(f"a replay buffer of {capacity:,} transitions ({item_bytes:,} bytes each) needs "
                          f"{capacity * item_bytes / 2**30:.1f} GiB; this machine has {have / 2**30:.1f} GiB. "
                          f"Lower --buffer-size (at most ~{int(0.8 * have / item_bytes):,}).")


# ----------------------------------------------------------------------------- learner and state


class Learner(NamedTuple):
    """Static pieces derived from (config, env); hashable so jitted functions can close over them."""

    network: ActorCritic
    optimizer: Any  # the algorithm's optax transformation(s); None where it has none
    discrete: bool
    spec: Any  # runtime.rollout.RolloutSpec: normalisers and action bounds


class TrainState(NamedTuple):
    params: Any
    opt_state: Any


def pick_network(config, obs_shape) -> str:
    if config.network != "auto":
        return config.network
    if len(obs_shape) != 3:
        return "mlp"
    return "nature_cnn" if min(obs_shape[:2]) >= 36 else "minatar_cnn"  # Atari 84x84 frames, MinAtar 10x10


def make_learner(config, env, optimizer=None) -> Learner:
    """The actor-critic network ``config`` asks for on ``env``, with ``optimizer``."""
    obs_shape = env.obs_shape
    network = ActorCritic(env.action_dim, env.discrete, pick_network(config, obs_shape), tuple(config.hidden),
                          config.activation, config.log_std_init, obs_ndim=max(1, len(obs_shape)))
    return Learner(network, optimizer, env.discrete, rollout_spec(config, env))


def key_rng(key, stream: int) -> np.random.Generator:
    """A NumPy generator seeded by a concrete JAX key and a stream number."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng([*np.asarray(data, np.uint32).ravel().tolist(), stream])


def initial_params(learner: Learner, obs_shape, key):
    """MLP parameters drawn on the host (``networks.mlp_params_np``: no compiled initialiser); the Nature
    CNN's from Flax's ``init`` in a small jitted program (run once, so compiled at LLVM -O0)."""
    if learner.network.network == "mlp":
        return mlp_params_np(learner.network, key_rng(key, 1), obs_shape)
    init = cached(("cnn_init", learner.network, obs_shape), lambda: jax.jit(
        lambda k: learner.network.init(k, jnp.zeros((1, *obs_shape), jnp.float32)), compiler_options=RUN_ONCE))
    return jax.device_get(init(key))


def zeros_like_init(init, *args):
    """``init(*args)`` for an optax state that starts at zero (Adam's moments and count, a clip's empty
    state), made as zeros of its shape: nothing compiled (an eager optax ``init`` compiles its ops on
    first call, a sizeable part of a short run's start-up). ``tests/test_runtime.py`` checks it equals ``init``."""
    return jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), jax.eval_shape(init, *args))


def init_state(init_opt_state, config, env, key) -> TrainState:
    """``Algorithm.init`` of an actor-critic method: parameters and its optimiser state."""
    learner = make_learner(config, env)
    params = initial_params(learner, env.obs_shape, key)
    return TrainState(params, init_opt_state(config, env, params))


def owners(train: TrainState) -> TrainState:
    """``parts.ActorCriticParts.owners``: 0 at the actor's leaves, 1 at the critic's (separate MLPs, and
    the optimiser state as ``(actor's, critic's)``)."""
    fill = lambda tree, device: jax.tree.map(lambda _: device, tree)
    actor, critic = split_params(train.params)
    return TrainState(join_params(fill(actor, 0), fill(critic, 1)), (fill(train.opt_state[0], 0),
                                                                     fill(train.opt_state[1], 1)))


# ----------------------------------------------------------------------------- acting


def policy(config, state: TrainState):
    return state.params


def act_words(config, env) -> int:
    """Random words per env and step: the Gumbel (discrete) or normal noise of each action dimension."""
    return env.action_dim


def sample(network: ActorCritic, discrete: bool, params, obs, noise):
    """A sample of the policy given pre-drawn ``noise``: Gumbel-max for categorical policies,
    ``mean + std * noise`` for Gaussian ones."""
    out = network.apply(params, obs, method=ActorCritic.policy)
    return sample_with_noise(out if discrete else (out[0], jnp.exp(out[1])), noise, discrete)


def act(config, env, deterministic: bool):
    """``act(params, obs, carry, bits)``: a sample of the policy (noise made from ``bits``), or its mode.
    The noise is computed apart from the policy (an optimisation barrier): fused into ``mean + std *
    noise`` XLA rounds the Gaussian samples differently in the last bit, and runs would no longer
    reproduce those of the previous drivers, which drew a rollout's noise before its scan."""
    network, discrete = make_learner(config, env).network, env.discrete

    def act_fn(params, obs, carry, bits):
        if deterministic:
            return mode(network.apply(params, obs, method=ActorCritic.policy), discrete), carry
        noise = jax.lax.optimization_barrier(noise_from_bits(bits, discrete))
        return sample(network, discrete, params, obs, noise), carry

    return act_fn


def host_act(config, env, params, obs_stats, rng: np.random.Generator):
    """NumPy acting for host rollouts (``Algorithm.host_act``): no jit dispatch per step for MLPs (only
    the actor is fetched: the critic may still be training), jitted for CNNs. The noise for the whole
    rollout is drawn on the first call (for a Gaussian policy multiplied by its std then: it is fixed
    for a rollout), so a step adds it to the logits or mean in place."""
    learner = make_learner(config, env)
    spec, discrete = learner.spec, learner.discrete
    if learner.network.network == "mlp":
        actor = jax.device_get({"params": split_params(params)[0]})
        norm = (obs_stats.mean, 1.0 / np.sqrt(obs_stats.var + 1e-8)) if spec.normalize_obs else (None, None)
        forward = numpy_policy(actor, config.activation, *norm)
        noise_scale = None if discrete else np.exp(np.asarray(actor["params"]["log_std"], np.float32))

        def draw(obs, z):
            out = forward(obs)
            out += z
            return out.argmax(-1) if discrete else out
    else:  # (uint8 frames go to the device as they are: the CNN scales them)
        jitted = cached(("cnn_sampler", learner), lambda: jax.jit(
            lambda p, s, o, z: sample(learner.network, discrete, p, model_input(spec, s, o), z),
            compiler_options=FAST))
        stats = jax.tree.map(jnp.asarray, obs_stats)
        draw = lambda obs, z: np.asarray(jitted(params, stats, obs, z))
        noise_scale = None  # the jitted sampler scales by the std itself
    noise = None

    def act_np(obs, carry):
        nonlocal noise
        if noise is None:
            z = draw_noise(rng, (config.num_steps, obs.shape[0], env.action_dim), discrete)
            noise = iter(z if noise_scale is None else z * noise_scale)
        return draw(obs, next(noise)), carry

    return act_np


# ----------------------------------------------------------------------------- advantages on a rollout


class UpdateData(NamedTuple):
    """Flattened ``[T * N]`` training data of one rollout."""

    obs: Any
    actions: Any
    old_log_probs: Any
    old_values: Any
    advantages: Any
    targets: Any


def model_input(spec, obs_stats, obs):
    """The network's input: ``uint8`` frames as they are (the CNN scales them), else normalised float32."""
    if obs.dtype == jnp.uint8 and not spec.normalize_obs:
        return obs
    return policy_input(spec, obs_stats, obs.astype(jnp.float32))


def in_chunks(f, x, rows: int):
    """``f(x)`` for ``x [T, N, ...]`` computed ``rows`` rows of the flattened ``[T * N, ...]`` at a time in a
    ``lax.map`` (padded to whole chunks, the padding dropped): the same values as one pass (``rows`` 0:
    one pass), at the batch size XLA:CPU's convolutions run fastest (../shared/design.md)."""
    lead, total = x.shape[:2], x.shape[0] * x.shape[1]
    if not rows or total <= rows:
        return f(x)
    chunks = -(-total // rows)
    flat = jnp.pad(x.reshape(total, *x.shape[2:]), [(0, chunks * rows - total)] + [(0, 0)] * (x.ndim - 2))
    out = jax.lax.map(f, flat.reshape(chunks, rows, *x.shape[2:]))
    return jax.tree.map(lambda y: y.reshape(chunks * rows, *y.shape[2:])[:total].reshape(*lead, *y.shape[2:]), out)


def prepare(config, learner: Learner, params, experience: Experience) -> UpdateData:
    """Normalise observations with the rollout's statistics, evaluate the rollout policy and value
    function on the batch and compute GAE advantages and TD(lambda) targets (Schulman et al. 2016).
    With ``config.micro_batch`` the network's passes over the rollout run in chunks (``in_chunks``)."""
    batch, obs_stats = experience
    chunk = getattr(config, "micro_batch", 0)
    apply = lambda x, **kw: in_chunks(lambda o: learner.network.apply(params, o, **kw), x, chunk)
    obs = model_input(learner.spec, obs_stats, batch.obs)
    next_obs = model_input(learner.spec, obs_stats, batch.next_obs)
    dist_params, values = apply(obs)
    if config.bootstrap_truncation:  # V(final state) of truncated episodes: the value of every next_obs
        next_values = apply(next_obs, method=ActorCritic.value)
        terminations = batch.terminations
    else:  # every episode end is terminal, so V(s_{t+1}) is needed only where it is the next row's state
        last = apply(next_obs[-1:], method=ActorCritic.value)
        next_values = jnp.concatenate([values[1:], last])
        terminations = batch.dones
    old_log_probs = make_dist(dist_params, learner.discrete).log_prob(batch.actions)
    advantages, targets = gae(batch.rewards, values, next_values, terminations, batch.dones,
                              config.gamma, config.gae_lambda)
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    return UpdateData(*map(flat, (obs, batch.actions, old_log_probs, values, advantages, targets)))


# ----------------------------------------------------------------------------- micro-batched gradients


def micro_batches(config) -> int:
    """Micro-batches of ``config.micro_batch`` rows per minibatch (1: none, or a minibatch no larger)."""
    rows = config.batch_size // getattr(config, "num_minibatches", 1)
    micro = getattr(config, "micro_batch", 0)
    return rows // micro if micro and micro < rows else 1


def micro_loss_config(config):
    """The config of a micro-batch's loss: advantages not normalised (``minibatch_grad`` does it per minibatch)."""
    return dataclasses.replace(config, normalize_advantages=False) if micro_batches(config) > 1 else config


def minibatch_grad(config, loss, params, mb: UpdateData):
    """``jax.grad(loss, has_aux=True)(params, mb)`` over ``micro_batches(config)`` equal micro-batches: every term
    of PPO's loss (eq. 7 of Schulman et al. 2017, entropy, value loss) and metric is a mean over rows, the mean
    of the micro-batches' means; so is the gradient (summed, scaled once; tests/test_atari.py). Advantages are
    normalised over the whole minibatch first, so ``loss`` is built with ``micro_loss_config``. Static slices,
    not a ``lax.scan``: XLA:CPU ran the CNN's gradient ~16x slower in a scan (benchmarks/README.md, Atari)."""
    k = micro_batches(config)
    if k == 1:
        return jax.grad(loss, has_aux=True)(params, mb)
    if config.normalize_advantages:
        mb = mb._replace(advantages=normalize_advantages(mb.advantages))
    rows = jax.tree.leaves(mb)[0].shape[0] // k
    total, metrics = None, []
    for i in range(k):
        grads, m = jax.grad(loss, has_aux=True)(params, jax.tree.map(lambda x: x[i * rows:(i + 1) * rows], mb))
        total = grads if total is None else jax.tree.map(jnp.add, total, grads)
        metrics.append(m)
    return jax.tree.map(lambda g: g / k, total), jax.tree.map(lambda *x: jnp.mean(jnp.stack(x)), *metrics)
