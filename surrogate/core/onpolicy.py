"""What every on-policy actor-critic method here shares: the common hyperparameters, the learner
(network, optimiser, rollout spec), GAE on a rollout, and the two training drivers.

An algorithm (PPO, TRPO, TNPG, VPG) plugs in as an ``Algorithm``: how to make its learner and
optimiser state, and ``learn(config, learner, train, batch, obs_stats, key) -> (train, stats)``,
one update from one rollout. The drivers do the rest:

* JAX env: the whole run is ``lax.scan`` of ``jax_update`` (rollout + learn) inside one ``jit``,
  vmapped over seeds and sharded across CPU devices. One seed of an algorithm with ``parts`` runs
  the actor's step and the critic's fit on two devices at once (``learn_parts_in_parallel``).
* Host (Gymnasium) env: the rollout loop runs in Python with a NumPy policy; ``learn`` is jitted.
  An algorithm whose update is the actor's step then the critic's fit (``Algorithm.parts``) has
  the critic's fit run on the second core while the next rollout runs: acting needs only the actor.
"""
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from surrogate._jax_setup import FAST, RUN_ONCE
from surrogate.core.advantages import gae
from surrogate.core.distributions import draw_noise, make_dist, mode, sample_with_noise
from surrogate.core.networks import ActorCritic, join_params, mlp_params_np, numpy_policy, split_params
from surrogate.core.rollout import (Batch, EnvCarry, RolloutSpec, clip_actions, host_rollout, init_carry, jax_rollout,
                                    key_words, keys_like, policy_input)
from surrogate.errors import ConfigError


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
    network: Literal["auto", "mlp", "nature_cnn"] = "auto"
    """auto: Nature CNN for image observations of at least 36x36, MLP otherwise"""
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "swish", "elu"] = "tanh"
    log_std_init: float = 0.0

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
        return self


def positive(config, name: str):
    if not getattr(config, name) > 0:
        raise ConfigError(f"{name} must be > 0, got {getattr(config, name)!r}. Pass a positive --{name.replace('_', '-')}.")


# ----------------------------------------------------------------------------- learner


class Learner(NamedTuple):
    """Static pieces derived from (config, env); hashable so jitted functions can close over them."""

    network: ActorCritic
    optimizer: Any  # the algorithm's optax transformation(s); None where it has none
    spec: RolloutSpec
    discrete: bool


class TrainState(NamedTuple):
    params: Any
    opt_state: Any


class RunnerState(NamedTuple):
    """Everything a JAX-env run carries from one update to the next (and checkpoints)."""

    train: TrainState
    env: EnvCarry
    key: Any
    update: Any  # int32 count of updates done


class Algorithm(NamedTuple):
    """An on-policy method, as the drivers see it."""

    name: str
    stat_names: tuple
    """names of the statistics ``learn`` returns, in order (columns of metrics.csv)"""
    make_learner: Callable  # (config, env) -> Learner
    init_opt_state: Callable  # (config, learner, params) -> optimiser state
    learn: Callable  # (config, learner, train, batch, obs_stats, key) -> (train, stats)
    parts: Callable | None = None
    """``config -> ActorCriticParts`` when the update is the actor's step then the critic's fit, else None"""


class ActorCriticParts(NamedTuple):
    """An update in two parts on the same prepared data (``prepare``): the actor's step, then the critic's
    fit; they share no parameters or optimiser state (``TrainState.opt_state`` is ``(actor's, critic's)``)."""

    step_actor: Callable  # (config, learner, train, UpdateData, drawn) -> (train, actor stats)
    fit_critic: Callable  # (config, learner, train, UpdateData, drawn) -> (train, (value loss,))
    merge_stats: Callable  # (actor stats, critic stats) -> stats in stat_names order
    draw: Callable = lambda config, data, key: key
    """``(config, data, key) -> drawn``: the randomness both parts use, drawn once (PPO: the epochs'
    shuffles); by default the key itself"""


def prepare_parts(parts: "ActorCriticParts", config, learner, train, batch, obs_stats, key):
    """What both parts of an update take: the prepared data and the randomness drawn for them."""
    data = prepare(config, learner, train.params, batch, obs_stats)
    return data, parts.draw(config, data, key)


def learn_in_parts(parts: "ActorCriticParts", config, learner, train, batch, obs_stats, key):
    """The whole update of an algorithm given in ``ActorCriticParts`` (its ``Algorithm.learn``)."""
    data, drawn = prepare_parts(parts, config, learner, train, batch, obs_stats, key)
    train, actor_stats = parts.step_actor(config, learner, train, data, drawn)
    train, critic_stats = parts.fit_critic(config, learner, train, data, drawn)
    return train, parts.merge_stats(actor_stats, critic_stats)


EPISODE_KEYS = ("episode_return_sum", "episode_length_sum", "episode_count")


def metrics_dict(algo: Algorithm, episodes, stats) -> dict:
    return {**dict(zip(EPISODE_KEYS, episodes)), **dict(zip(algo.stat_names, stats))}


def pick_network(config, obs_shape) -> str:
    if config.network != "auto":
        return config.network
    image = len(obs_shape) == 3 and min(obs_shape[:2]) >= 36
    return "nature_cnn" if image else "mlp"


def make_learner(config, env, optimizer=None) -> Learner:
    """The actor-critic network and rollout spec ``config`` asks for on ``env``, with ``optimizer``."""
    config.validate()
    obs_shape = env.obs_shape
    network = ActorCritic(env.action_dim, env.discrete, pick_network(config, obs_shape), tuple(config.hidden),
                          config.activation, config.log_std_init, obs_ndim=max(1, len(obs_shape)))
    bounds = env.action_bounds
    low, high = (None, None) if bounds is None else bounds
    spec = RolloutSpec(config.num_steps, config.normalize_obs, config.normalize_reward, config.gamma,
                       _hashable(low), _hashable(high))
    return Learner(network, optimizer, spec, env.discrete)


def _hashable(x):
    return x if x is None or np.isscalar(x) else tuple(np.asarray(x, np.float32).tolist())


def key_rng(key, stream: int) -> np.random.Generator:
    """A NumPy generator seeded by a concrete JAX key and a stream number."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng([*np.asarray(data, np.uint32).ravel().tolist(), stream])


def host_params(learner: Learner, obs_shape, keys):
    """Initial parameters of an MLP network for each key of ``keys`` (a leading seed axis), drawn on the
    host (``networks.mlp_params_np``: no compiled initialiser); None for other networks."""
    if learner.network.network != "mlp":
        return None
    draws = [mlp_params_np(learner.network, key_rng(k, 1), obs_shape) for k in keys]
    return jax.tree.map(lambda *x: np.stack(x), *draws)


def init_train_state(algo: Algorithm, config, learner: Learner, obs_shape, key, params=None) -> TrainState:
    """``params`` default to the network's ``init`` with ``key`` (NumPy draws for an MLP when ``key``
    is concrete)."""
    if params is None and learner.network.network == "mlp" and not isinstance(key, jax.core.Tracer):
        params = jax.tree.map(lambda x: x[0], host_params(learner, obs_shape, key[None]))
    if params is None:
        params = learner.network.init(key, jnp.zeros((1, *obs_shape), jnp.float32))
    return TrainState(params, algo.init_opt_state(config, learner, params))


def sample_actions(learner: Learner, params, obs, noise):
    """Actions for ``obs`` given pre-drawn ``noise`` (``draw_noise``/``noise_from_bits`` of shape
    ``[..., action_dim]``): Gumbel-max for categorical policies, ``mean + std * noise`` for Gaussian ones."""
    out = learner.network.apply(params, obs, method=ActorCritic.policy)
    return sample_with_noise(out if learner.discrete else (out[0], jnp.exp(out[1])), noise, learner.discrete)


def greedy_actions(learner: Learner, params, obs):
    return mode(learner.network.apply(params, obs, method=ActorCritic.policy), learner.discrete)


# ----------------------------------------------------------------------------- advantages on a rollout


class UpdateData(NamedTuple):
    """Flattened ``[T * N]`` training data of one rollout."""

    obs: Any
    actions: Any
    old_log_probs: Any
    old_values: Any
    advantages: Any
    targets: Any


def prepare(config, learner: Learner, params, batch: Batch, obs_stats) -> UpdateData:
    """Normalise observations with the frozen statistics, evaluate the rollout policy and value
    function on the batch and compute GAE advantages and TD(lambda) targets (Schulman et al. 2016)."""
    obs = policy_input(learner.spec, obs_stats, batch.obs.astype(jnp.float32))
    next_obs = policy_input(learner.spec, obs_stats, batch.next_obs.astype(jnp.float32))
    dist_params, values = learner.network.apply(params, obs)
    if config.bootstrap_truncation:  # V(final state) of truncated episodes: the value of every next_obs
        next_values = learner.network.apply(params, next_obs, method=ActorCritic.value)
        terminations = batch.terminations
    else:  # every episode end is terminal, so V(s_{t+1}) is needed only where it is the next row's state
        last = learner.network.apply(params, next_obs[-1:], method=ActorCritic.value)
        next_values = jnp.concatenate([values[1:], last])
        terminations = batch.dones
    old_log_probs = make_dist(dist_params, learner.discrete).log_prob(batch.actions)
    advantages, targets = gae(batch.rewards, values, next_values, terminations, batch.dones,
                              config.gamma, config.gae_lambda)
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    return UpdateData(*map(flat, (obs, batch.actions, old_log_probs, values, advantages, targets)))


def epoch_permutations(key, num_epochs: int, rows: int):
    """One uniformly random permutation of ``range(rows)`` per epoch: the order that sorts random keys,
    as ``jax.random.permutation`` draws it, but with each key packed into one uint32 (random high bits,
    the row's position in the low ``b = ceil(log2 rows)`` bits) so that each round is a sort of one
    array of distinct integers. XLA:CPU sorts that ~4x faster than a sort of (key, index) pairs
    (~45 ns per element against ~250 here), and one random-number call serves every epoch and round.

    Rows whose random parts tie keep their previous relative order, as in ``jax.random.permutation``;
    like it, we use enough rounds (each re-sorting the previous order) for ``3 log2(rows)`` random bits
    in all: ``ceil(3 log2(rows) / (32 - b))`` rounds, 1 for rows <= 256, 2 up to 2^13."""
    index_bits = max(1, (rows - 1).bit_length())
    rounds = max(1, math.ceil(3 * math.log2(max(rows, 2)) / (32 - index_bits)))
    low = jnp.uint32((1 << index_bits) - 1)
    position = jnp.arange(rows, dtype=jnp.uint32)
    bits = jax.random.bits(key, (rounds, num_epochs, rows))
    perm = None
    for r in range(rounds):
        order = (jnp.sort((bits[r] & ~low) | position, axis=1) & low).astype(jnp.int32)
        perm = order if perm is None else jnp.take_along_axis(perm, order, axis=1)
    return perm


def shuffled_minibatches(perm, data, num_minibatches: int):
    """Every field of ``data`` with its rows in the order ``perm`` and reshaped to
    ``[num_minibatches, rows // num_minibatches, ...]``, for a ``scan`` over minibatches."""
    return jax.tree.map(lambda x: x[perm].reshape(num_minibatches, -1, *x.shape[1:]), data)


# ----------------------------------------------------------------------------- JAX-env driver


def init_runner(algo: Algorithm, config, learner: Learner, env, key, params=None) -> RunnerState:
    k_net, k_env, k_run = jax.random.split(key, 3)
    train = init_train_state(algo, config, learner, env.obs_shape, k_net, params)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(k_env, config.num_envs))
    return RunnerState(train, init_carry(env_state, obs, jnp), k_run, jnp.zeros((), jnp.int32))


def jax_update(algo: Algorithm, config, learner: Learner, env, runner: RunnerState, parts_in_parallel: bool = False):
    """Rollout + learn for one seed; the body of the training ``scan``. ``parts_in_parallel``: the
    update's two parts on two devices at once (``learn_parts_in_parallel``)."""
    key, k_roll, k_learn = jax.random.split(runner.key, 3)
    sample = lambda params, obs, noise: sample_actions(learner, params, obs, noise)
    carry, batch, episodes = jax_rollout(learner.spec, env, env.default_params, sample, runner.train.params,
                                         runner.env, k_roll, learner.discrete, start=runner.update == 0)
    learn = partial(learn_parts_in_parallel, algo) if parts_in_parallel else algo.learn
    train, stats = learn(config, learner, runner.train, batch, carry.obs_stats, k_learn)
    return RunnerState(train, carry, key, runner.update + 1), metrics_dict(algo, episodes, stats)


def jax_train_chunk(algo: Algorithm, config, learner: Learner, env, runner: RunnerState, num_updates: int,
                    parts_in_parallel: bool = False):
    runner = start_fresh(algo, config, learner, runner)  # once per chunk: a no-op unless it starts the run
    update = lambda r, _: jax_update(algo, config, learner, env, r, parts_in_parallel)
    return jax.lax.scan(update, runner, None, length=num_updates)


PARTS_AXIS = "parts"


def parts_on_two_devices(algo: Algorithm, config, seeds: int) -> bool:
    """Whether a JAX-env run puts the two parts of each update (the actor's step, the critic's fit) on
    two CPU devices at once: one seed (more seeds fill the devices with seeds instead) of an algorithm
    whose update comes in those parts, on a host with two or more devices."""
    return seeds == 1 and len(jax.devices()) > 1 and algo.parts is not None and algo.parts(config) is not None


def learn_parts_in_parallel(algo: Algorithm, config, learner: Learner, train: TrainState, batch: Batch, obs_stats,
                            key):
    """``learn_in_parts`` with the parts on two devices at once, inside a ``shard_map`` over ``PARTS_AXIS``
    (two devices, the run's state replicated on both). Both prepare the data (GAE with the value function
    before the update); device 0 takes the actor's step and device 1 fits the critic. Then each device
    takes the other's half of the new state and statistics (``take_from_devices``), so both hold the whole
    of it. The parts share no parameters or optimiser state, so this is the sequential update, computed
    in about the time of its longer part; the rollout (it needs only the actor) runs on both devices.
    The same idea as the host driver's, which fits the critic while the next rollout runs."""
    parts = algo.parts(config)
    n_actor = len(algo.stat_names) - 1  # fit_critic's statistics: (value loss,)
    data, drawn = prepare_parts(parts, config, learner, train, batch, obs_stats, key)  # on both devices

    def actor_side(_):
        new, stats = parts.step_actor(config, learner, train, data, drawn)
        return new, parts.merge_stats(stats, (jnp.zeros(()),))

    def critic_side(_):
        new, stats = parts.fit_critic(config, learner, train, data, drawn)
        return new, parts.merge_stats((jnp.zeros(()),) * n_actor, stats)

    mine = jax.lax.cond(jax.lax.axis_index(PARTS_AXIS) == 0, actor_side, critic_side, None)
    fill = lambda tree, device: jax.tree.map(lambda _: device, tree)
    actor, critic = split_params(train.params)
    source = (TrainState(join_params(fill(actor, 0), fill(critic, 1)),
                         (fill(train.opt_state[0], 0), fill(train.opt_state[1], 1))),
              parts.merge_stats((0,) * n_actor, (1,)))
    return take_from_devices(mine, source)


def take_from_devices(tree, source):
    """Every leaf of ``tree`` as the device numbered by the same leaf of ``source`` (0 or 1 on
    ``PARTS_AXIS``) holds it, on both devices: one ``all_gather`` per dtype of the leaves concatenated,
    then each leaf sliced from its source's row (values arrive bit for bit)."""
    leaves, treedef = jax.tree.flatten(tree)
    src = jax.tree.leaves(source)
    out = list(leaves)
    for dtype in sorted({x.dtype for x in leaves}, key=str):
        idx = [i for i, x in enumerate(leaves) if x.dtype == dtype]
        both = jax.lax.all_gather(jnp.concatenate([leaves[i].reshape(-1) for i in idx]), PARTS_AXIS)
        start = 0
        for i in idx:
            out[i] = both[src[i], start:start + leaves[i].size].reshape(leaves[i].shape)
            start += leaves[i].size
    return treedef.unflatten(out)


def seed_mesh(num_seeds: int):
    """The largest set of CPU devices that divides the seeds evenly (both cores here)."""
    devices = jax.devices()
    n = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
    return jax.sharding.Mesh(np.array(devices[:n]), ("seeds",))


def vmap_seeds(fn: Callable, num_seeds: int):
    """``vmap(fn)`` over a leading seed axis; with one seed, ``fn`` on the squeezed input (a vmap of
    size 1 costs ~15% more compile time and nothing at run time)."""
    if num_seeds > 1:
        return jax.vmap(fn)
    return lambda *xs: jax.tree.map(lambda y: y[None], fn(*jax.tree.map(lambda y: y[0], xs)))


def over_seeds(fn: Callable, num_seeds: int, donate: bool = False, parts: bool = False):
    """``jit(vmap(fn))`` over a leading seed axis, sharded across CPU devices with ``shard_map``.
    ``parts``: one seed, replicated on two devices that split each update between them
    (``learn_parts_in_parallel``).

    Returns a ``SeedSharded`` callable that places its input on the seed mesh first (letting the
    jitted call reshard single-device inputs implicitly has hung here on jax 0.10.2)."""
    if parts:
        mesh, spec = jax.sharding.Mesh(np.array(jax.devices()[:2]), (PARTS_AXIS,)), jax.sharding.PartitionSpec()
        # check_vma off: the devices' outputs are equal by construction (take_from_devices)
        batched = jax.shard_map(vmap_seeds(fn, 1), mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    else:
        mesh, spec = seed_mesh(num_seeds), jax.sharding.PartitionSpec("seeds")
        batched = vmap_seeds(fn, num_seeds)
        if mesh.devices.size > 1:
            batched = jax.shard_map(batched, mesh=mesh, in_specs=spec, out_specs=spec)
    sharding = jax.sharding.NamedSharding(mesh, spec)
    return SeedSharded(jax.jit(batched, donate_argnums=(0,) if donate else (), compiler_options=FAST), sharding)


def train_program(algo: Algorithm, config, learner: Learner, env, seeds: int, num_updates: int,
                  donate: bool = False) -> "SeedSharded":
    """The jitted program that runs ``num_updates`` updates of ``seeds`` seeds (a chunk of a run)."""
    parallel = parts_on_two_devices(algo, config, seeds)
    return over_seeds(partial(jax_train_chunk, algo, config, learner, env, num_updates=num_updates,
                              parts_in_parallel=parallel), seeds, donate, parts=parallel)


class SeedSharded(NamedTuple):
    jitted: Any
    sharding: Any

    def place(self, x):
        return jax.device_put(x, self.sharding)

    def __call__(self, x):
        return self.jitted(self.place(x))

    def lower(self, x):
        return self.jitted.lower(self.place(x))


# ----------------------------------------------------------------------------- host-env driver


def host_sampler(config, learner: Learner, params, obs_stats, rng: np.random.Generator):
    """``act(raw_obs) -> actions`` for a host rollout, acting with ``obs_stats`` frozen. NumPy for MLPs
    (no jit dispatch per step), jitted for CNNs. The noise for the whole rollout is drawn on the
    first call (and, for a Gaussian policy, multiplied by its std then: it is fixed for a rollout),
    so a step adds it to the logits or mean in place."""
    spec, discrete = learner.spec, learner.discrete
    if learner.network.network == "mlp":  # fetch only the actor: the critic may still be training
        actor = jax.device_get({"params": split_params(params)[0]})
        norm = (obs_stats.mean, 1.0 / np.sqrt(obs_stats.var + 1e-8)) if spec.normalize_obs else (None, None)
        forward = numpy_policy(actor, config.activation, *norm)
        std = None if discrete else np.exp(np.asarray(actor["params"]["log_std"], np.float32))

        def sample(obs, z):
            out = forward(obs)
            out += z
            return out.argmax(-1) if discrete else out

        noise_scale = std
    else:
        jitted = _cached(("sampler", learner), lambda: jax.jit(
            lambda p, s, o, z: sample_actions(learner, p, policy_input(spec, s, o.astype(jnp.float32)), z),
            compiler_options=FAST))
        stats = jax.tree.map(jnp.asarray, obs_stats)
        sample = lambda obs, z: np.asarray(jitted(params, stats, obs, z))
        noise_scale = None  # sample_actions scales by the std itself
    noise = None

    def act(obs):
        nonlocal noise
        if noise is None:
            z = draw_noise(rng, (config.num_steps, obs.shape[0], learner.network.action_dim), discrete)
            noise = iter(z if noise_scale is None else z * noise_scale)
        return sample(obs, next(noise))

    return act


class HostRunner(NamedTuple):
    """What a host-env run carries between updates. The vector env is not saved: a resumed
    host run restarts its episodes (MuJoCo simulator state is not checkpointable)."""

    train: TrainState
    env: EnvCarry  # env_state None; obs kept for continuity within a process
    key: Any
    update: Any


def init_host_runner(algo: Algorithm, config, learner: Learner, env, key, venv) -> HostRunner:
    k_net, k_run = jax.random.split(key)
    obs, _ = venv.reset(seed=int(jax.random.randint(k_run, (), 0, 2**31 - 1)))
    train = init_train_state(algo, config, learner, env.obs_shape, k_net)
    return HostRunner(train, init_carry(None, obs.astype(np.float32), np), k_run, np.zeros((), np.int32))


def host_learn_fn(algo: Algorithm, config, learner: Learner):
    """``f(train, batch, obs_stats, key) -> (train, stats, acting params)`` for host runs.

    With ``Algorithm.parts`` the critic's fit is dispatched asynchronously after the actor's step and
    the actor's parameters are returned for the next rollout at once, so the critic trains on the
    second core while the next rollout runs. Otherwise the jitted ``learn``."""
    parts = algo.parts and algo.parts(config)
    if parts:
        def prepare_and_step(train, batch, obs_stats, key):
            data, drawn = prepare_parts(parts, config, learner, train, batch, obs_stats, key)
            return (*parts.step_actor(config, learner, train, data, drawn), data, drawn)

        actor, critic = _cached(("learn_parts", algo.name, config), lambda: (
            jax.jit(prepare_and_step, compiler_options=FAST),
            jax.jit(lambda t, d, r: parts.fit_critic(config, learner, t, d, r), compiler_options=FAST)))

        def learn_then_fit(train, batch, obs_stats, key):
            train, actor_stats, data, drawn = actor(train, batch, obs_stats, key)
            acting = train.params
            train, critic_stats = critic(train, data, drawn)
            return train, parts.merge_stats(actor_stats, critic_stats), acting

        return learn_then_fit
    learn = _cached(("learn", algo.name, config), lambda: jax.jit(
        lambda t, b, s, k: algo.learn(config, learner, t, b, s, k), compiler_options=FAST))

    def learn_and_act(train, batch, obs_stats, key):
        train, stats = learn(train, batch, obs_stats, key)
        return train, stats, train.params

    return learn_and_act


def host_update(algo: Algorithm, config, learner: Learner, learn_fn, venv, runner: HostRunner, seed: int, acting):
    """Python rollout on the vector env with the ``acting`` parameters, then the jitted update.

    Returns ``(runner, metrics, acting)``; the metrics stay on the device (fetching them at once
    would wait for work the algorithm left running in the background)."""
    key, k_learn = jax.random.split(runner.key)
    rng = np.random.default_rng([seed, int(runner.update)])
    sampler = host_sampler(config, learner, acting, runner.env.obs_stats, rng)
    carry, batch, episodes = host_rollout(learner.spec, venv, sampler, runner.env)
    obs_stats = jax.tree.map(jnp.asarray, carry.obs_stats)
    train, stats, acting = learn_fn(runner.train, batch, obs_stats, k_learn)
    metrics = metrics_dict(algo, (np.float32(x) for x in episodes), stats)
    return HostRunner(train, carry, key, runner.update + 1), metrics, acting


# ----------------------------------------------------------------------------- train / evaluate


class TrainResult(NamedTuple):
    state: Any  # RunnerState (JAX env) or list of HostRunner (host env), seed-stacked for JAX
    history: dict  # metric name -> float array [seeds, updates]
    steps_per_update: int

    @property
    def params(self):
        return self.state.train.params if isinstance(self.state, RunnerState) else [r.train.params for r in self.state]


def _stack_history(algo: Algorithm, history: dict, metrics: dict) -> dict:
    """Append ``metrics`` (``[seeds, updates]`` arrays) to ``history``, keys in the algorithm's order."""
    new = {k: np.asarray(metrics[k], np.float64) for k in (*EPISODE_KEYS, *algo.stat_names)}
    return {k: np.concatenate([history[k], v], axis=1) if k in history else v for k, v in new.items()}


_COMPILED = {}


def _cached(key, build):
    """Compiled functions are reused across ``train`` calls with the same (config, env, seeds)."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def train(algo: Algorithm, config, env, key, *, seeds: int = 1, logger: Callable | None = None,
          resume: TrainResult | None = None, chunk_updates: int | None = None, until: int | None = None) -> TrainResult:
    """Train ``seeds`` independent agents of ``algo`` on ``env``.

    ``logger(result_so_far, updates_done)`` is called after every chunk of ``chunk_updates``
    updates (default: all of them); the run directory uses it to checkpoint. ``resume``
    continues a previous result (from ``checkpoint.load``) to ``config.num_updates``; ``until``
    stops after that many updates in all (as an interruption would; the schedule is unchanged).
    """
    learner = algo.make_learner(config, env)
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}.")
    chunk = max(1, min(chunk_updates or config.num_updates, config.num_updates))
    until = config.num_updates if until is None else min(until, config.num_updates)
    run = _train_jax if env.backend == "jax" else _train_host
    return run(algo, config, learner, env, key, seeds, logger, resume, chunk, until)


def jax_init(algo: Algorithm, config, learner: Learner, env, seeds: int):
    """``init(keys) -> RunnerState`` for a leading axis of ``seeds`` keys, made on the host with nothing
    to compile for MLPs: the parameters are NumPy draws (``host_params``); the optimiser state and the
    envs' states are zero placeholders of the right shapes, replaced in the training program at the
    first update (``start_fresh``; ``jax_rollout(start=...)`` resets the envs with the rollout's own
    reset draws). Nature-CNN parameters come from Flax's ``init`` in a small jitted program (run once,
    so compiled at LLVM -O0). Each key seeds its run's parameters (NumPy) and is the run's JAX key."""
    obs_shape = env.obs_shape

    def cnn_program():
        init = lambda k: learner.network.init(k, jnp.zeros((1, *obs_shape), jnp.float32))
        return jax.jit(vmap_seeds(init, seeds), compiler_options=RUN_ONCE)

    def init(keys):
        keys = np.asarray(keys)
        params = host_params(learner, obs_shape, keys)
        if params is None:
            params = _cached(("cnn_init", learner.network, obs_shape, seeds), cnn_program)(keys)
        first = jax.tree.map(lambda x: x[0], params)
        opt_state = jax.eval_shape(lambda p: algo.init_opt_state(config, learner, p), first)
        obs, env_state = jax.eval_shape(lambda k: jax.vmap(env.reset)(jax.random.split(k, config.num_envs)), keys[0])
        zeros = lambda tree: jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), tree)
        carry = init_carry(zeros(env_state), zeros(obs), np)
        per_seed = lambda tree: jax.tree.map(lambda x: np.broadcast_to(x, (seeds, *np.shape(x))).copy(), tree)
        return RunnerState(TrainState(params, per_seed(zeros(opt_state))), per_seed(carry), keys,
                           np.zeros((seeds,), np.int32))

    return init


def start_fresh(algo: Algorithm, config, learner: Learner, runner: RunnerState) -> RunnerState:
    """A run's state at its first update from ``jax_init``'s: the optimiser state of the initial
    parameters in place of the placeholder. Applied at the start of every training chunk; a resumed or
    continuing run keeps its own (a select on ``runner.update == 0``, nothing else)."""
    opt_state = algo.init_opt_state(config, learner, runner.train.params)
    pick = lambda new, old: jnp.where(runner.update == 0, new, old)
    return runner._replace(train=runner.train._replace(opt_state=jax.tree.map(pick, opt_state, runner.train.opt_state)))


def state_template(algo: Algorithm, config, env, key, seeds: int):
    """The structure (shapes and dtypes) of a run's state, for restoring a checkpoint."""
    learner = algo.make_learner(config, env)
    if env.backend == "jax":  # init_runner's state has jax_init's structure; eval_shape draws nothing
        return jax.eval_shape(jax.vmap(lambda k: init_runner(algo, config, learner, env, k)), jax.random.split(key, seeds))
    train = jax.eval_shape(lambda k: init_train_state(algo, config, learner, env.obs_shape, k), key)
    carry = init_carry(None, np.zeros((config.num_envs, *env.obs_shape), np.float32), np)
    return [HostRunner(train, carry, jax.eval_shape(lambda: key), np.zeros((), np.int32)) for _ in range(seeds)]


def _train_jax(algo, config, learner, env, key, seeds, logger, resume, chunk, until):
    if resume is None:
        runner, history = jax_init(algo, config, learner, env, seeds)(jax.random.split(key, seeds)), {}
    else:
        runner, history = resume.state, resume.history
    done = int(np.asarray(runner.update).reshape(-1)[0])
    while done < until:
        n = min(chunk, until - done)
        step = _cached(("chunk", algo.name, config, env.id, seeds, n),
                       lambda: train_program(algo, config, learner, env, seeds, n, donate=True))
        runner, metrics = step(runner)
        history = _stack_history(algo, history, jax.device_get(metrics))
        done += n
        if logger:
            logger(TrainResult(runner, history, config.batch_size), done)
    return TrainResult(runner, history, config.batch_size)


def _train_host(algo, config, learner, env, key, seeds, logger, resume, chunk, until):
    learn_fn = host_learn_fn(algo, config, learner)
    seed_keys = jax.random.split(key, seeds)
    venvs = [env.vector(config.num_envs, seed=i) for i in range(seeds)]
    runners = [init_host_runner(algo, config, learner, env, k, v) for k, v in zip(seed_keys, venvs)]
    history = {}
    if resume is not None:  # restore learner state; episodes restart
        runners = [r._replace(train=old.train, key=old.key, update=old.update,
                              env=r.env._replace(obs_stats=old.env.obs_stats, return_norm=old.env.return_norm))
                   for r, old in zip(runners, resume.state)]
        history = resume.history
    done = int(runners[0].update)
    acting = [r.train.params for r in runners]
    try:
        while done < until:
            n = min(chunk, until - done)
            per_seed = []
            for i in range(seeds):
                ms = []
                for _ in range(n):
                    runners[i], m, acting[i] = host_update(algo, config, learner, learn_fn, venvs[i], runners[i], i,
                                                           acting[i])
                    ms.append(m)
                per_seed.append(jax.tree.map(lambda *x: np.stack(x), *jax.device_get(ms)))
            history = _stack_history(algo, history, jax.tree.map(lambda *x: np.stack(x), *per_seed))
            done += n
            if logger:
                logger(TrainResult(runners, history, config.batch_size), done)
    finally:
        for v in venvs:
            v.close()
    return TrainResult(runners, history, config.batch_size)


def seed_params(result: TrainResult, i: int):
    """Parameters and observation statistics of seed ``i``."""
    if isinstance(result.state, RunnerState):
        pick = lambda x: x[i]
        return jax.tree.map(pick, result.state.train.params), jax.tree.map(pick, result.state.env.obs_stats)
    r = result.state[i]
    return r.train.params, jax.tree.map(jnp.asarray, r.env.obs_stats)


def evaluate(config, env, params, obs_stats, key, episodes: int = 20) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes with the deterministic policy (argmax / mean)."""
    learner = make_learner(config, env)
    if env.backend == "jax":
        return np.asarray(jax_eval_program(config, learner, env, episodes)(params, obs_stats, key))
    return _evaluate_host(learner, env, params, obs_stats, int(jax.random.randint(key, (), 0, 2**31 - 1)), episodes)


def jax_eval_program(config, learner: Learner, env, episodes: int):
    """``evaluate_jax`` jitted. An evaluation runs once or a few times per run, so it is compiled for
    compile time (``RUN_ONCE``: LLVM -O0, no fusion emitters): measured two days apart on CartPole,
    -O0 0.33 s to compile and 11 ms to run 20 episodes against 0.44 s and 3 ms at -O1; without the
    fusion emitters 0.39-0.46 s and 21 ms against 0.57-0.60 s and 17-19 ms (a slower day)."""
    return _cached(("eval", config, env.id, episodes), lambda: jax.jit(
        lambda p, s, k: evaluate_jax(learner, env, p, s, k, episodes), compiler_options=RUN_ONCE))


def evaluate_jax(learner, env, params, obs_stats, key, episodes):
    """``episodes`` episodes in parallel for ``max_episode_steps`` steps; an episode's return stops
    counting when it ends (its env then stays where it was: ``step_to`` with no reset, keys drawn
    up front from one draw of random bits, so the loop body holds no random-number code)."""
    bits = jax.random.bits(key, (env.max_episode_steps + 1, episodes, key_words(key)))
    obs, state = jax.vmap(env.reset)(keys_like(key, bits[-1]))
    step = jax.vmap(env.step_to, in_axes=(0, 0, 0, 0, None))

    def body(carry, k):
        obs, state, ret, alive = carry
        actions = greedy_actions(learner, params, policy_input(learner.spec, obs_stats, obs.astype(jnp.float32)))
        obs, state, reward, done, _ = step(k, state, clip_actions(learner.spec, actions, jnp), (obs, state),
                                           env.default_params)
        ret = ret + reward * alive
        return (obs, state, ret, alive * (1.0 - done)), None

    init = (obs, state, jnp.zeros(episodes), jnp.ones(episodes))
    (_, _, ret, _), _ = jax.lax.scan(body, init, keys_like(key, bits[:-1]))
    return ret


def _evaluate_host(learner, env, params, obs_stats, seed, episodes):
    venv = env.vector(episodes, seed)
    obs, _ = venv.reset(seed=seed)
    greedy = _cached(("greedy", learner.network, learner.spec), lambda: jax.jit(
        lambda p, o: greedy_actions(learner, p, o), compiler_options=FAST))
    ret, alive = np.zeros(episodes), np.ones(episodes)
    try:
        while alive.any():
            actions = np.asarray(greedy(params, policy_input(learner.spec, obs_stats, jnp.asarray(obs))))
            obs, reward, term, trunc, _ = venv.step(clip_actions(learner.spec, actions, np))
            ret += reward * alive
            alive *= 1.0 - (term | trunc)
    finally:
        venv.close()
    return ret
