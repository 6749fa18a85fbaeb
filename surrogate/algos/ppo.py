"""Proximal Policy Optimization with the clipped surrogate objective (Schulman et al. 2017).

Reads top to bottom: config, the learner (network + optimiser), one PPO update split into
named phases (``prepare`` -> ``update_epoch`` -> ``update_minibatch``), and the two drivers:
on a JAX env the whole run is ``lax.scan`` of ``jax_update`` inside one ``jit``, vmapped
over seeds and sharded across CPU devices; on a host (Gymnasium) env the rollout loop runs
in Python and ``learn`` is jitted.

Rollouts, GAE, losses, normalisers and networks live in ``surrogate.core``.
"""
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from surrogate._jax_setup import FAST, RUN_ONCE
from surrogate.core.advantages import gae
from surrogate.core.distributions import draw_noise, make_dist, mode, sample_numpy
from surrogate.core.losses import clipped_surrogate_loss, normalize_advantages, value_loss
from surrogate.core.networks import ActorCritic, numpy_policy
from surrogate.core.rollout import (Batch, EnvCarry, RolloutSpec, clip_actions, host_rollout, init_carry, jax_rollout,
                                    policy_input)
from surrogate.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """PPO hyperparameters. Defaults are rl-zoo3's CartPole-v1 values (all seeds reach 500 in 100k
    steps); ``PRESETS["mujoco"]`` holds the paper's MuJoCo settings (Table 3)."""

    env: str = "CartPole-v1"
    total_steps: int = 100_000
    num_envs: int = 8
    """parallel environments per seed"""
    num_steps: int = 32
    """rollout length per environment (horizon T)"""
    num_epochs: int = 20
    num_minibatches: int = 1
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over training"""
    gamma: float = 0.98
    gae_lambda: float = 0.8
    clip_eps: float = 0.2
    clip_value: bool = True
    """clip the value update to +-clip_eps around the old value (PPO reference code)"""
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    grad_clip: Literal["global_norm", "elementwise"] = "global_norm"
    normalize_advantages: bool = True
    """per minibatch"""
    normalize_obs: bool = False
    normalize_reward: bool = False
    bootstrap_truncation: bool = True
    """bootstrap time-limit truncations from V(final obs); False treats them as terminal"""
    network: Literal["auto", "mlp", "nature_cnn"] = "auto"
    """auto: Nature CNN for image observations of at least 36x36, MLP otherwise"""
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "swish", "elu"] = "tanh"
    adam_eps: float = 1e-5
    log_std_init: float = 0.0
    separate_updates: bool = False
    """actor and critic each with their own optimiser and gradient clipping, the critic's epochs after
    the actor's (rejax's structure; MLP networks only). On host envs the critic's epochs then run
    on a second core while the next rollout runs, since acting needs only the actor."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.batch_size)

    def validate(self) -> "Config":
        positive = ("total_steps", "num_envs", "num_steps", "num_epochs", "num_minibatches", "learning_rate",
                    "clip_eps", "max_grad_norm", "adam_eps")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}. Pass a positive --{name.replace('_', '-')}.")
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {self.gamma!r}.")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda must be in [0, 1], got {self.gae_lambda!r}.")
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"The batch of num_envs x num_steps = {self.num_envs} x {self.num_steps} = {self.batch_size} steps "
                f"does not split into {self.num_minibatches} minibatches. Choose --num-minibatches dividing "
                f"{self.batch_size}, or change --num-envs/--num-steps.")
        if self.total_steps < self.batch_size:
            raise ConfigError(f"total_steps ({self.total_steps}) is smaller than one batch ({self.batch_size}). "
                              f"Raise --total-steps or lower --num-envs/--num-steps.")
        if self.separate_updates and self.network == "nature_cnn":
            raise ConfigError("separate_updates needs separate actor and critic networks; the Nature CNN shares "
                              "its torso. Use --network mlp or drop --separate-updates.")
        if not self.hidden or min(self.hidden) <= 0:
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}.")
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
    # rejax 0.1.3's own CartPole config, with its semantics (elementwise grad clip, timeouts terminal,
    # constant lr), for like-for-like speed comparisons.
    "cartpole-rejax": Config(num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5, learning_rate=7.5e-4,
                             anneal_lr=False, gamma=0.99, gae_lambda=0.95, ent_coef=0.01, grad_clip="elementwise",
                             bootstrap_truncation=False, adam_eps=1e-8),
}


# ----------------------------------------------------------------------------- learner


class Learner(NamedTuple):
    """Static pieces derived from (config, env); hashable so jitted functions can close over them."""

    network: ActorCritic
    optimizer: Any
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


class Metrics(NamedTuple):
    episode_return_sum: Any
    episode_length_sum: Any
    episode_count: Any
    policy_loss: Any
    value_loss: Any
    entropy: Any
    approx_kl: Any
    clip_frac: Any


def pick_network(config: Config, obs_shape) -> str:
    if config.network != "auto":
        return config.network
    image = len(obs_shape) == 3 and min(obs_shape[:2]) >= 36
    return "nature_cnn" if image else "mlp"


def make_learner(config: Config, env) -> Learner:
    config.validate()
    obs_shape = env.obs_shape
    network = ActorCritic(env.action_dim, env.discrete, pick_network(config, obs_shape), tuple(config.hidden),
                          config.activation, config.log_std_init, obs_ndim=max(1, len(obs_shape)))
    grad_steps = config.num_updates * config.num_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.learning_rate, 0.0, grad_steps) if config.anneal_lr else config.learning_rate
    clip = (optax.clip_by_global_norm(config.max_grad_norm) if config.grad_clip == "global_norm"
            else optax.clip(config.max_grad_norm))
    # One flat parameter vector for clipping and Adam: fewer, larger XLA ops per minibatch step.
    optimizer = optax.flatten(optax.chain(clip, optax.adam(lr, eps=config.adam_eps)))
    bounds = env.action_bounds
    low, high = (None, None) if bounds is None else bounds
    spec = RolloutSpec(config.num_steps, config.normalize_obs, config.normalize_reward, config.gamma,
                       _hashable(low), _hashable(high))
    return Learner(network, optimizer, spec, env.discrete)


def _hashable(x):
    return x if x is None or np.isscalar(x) else tuple(np.asarray(x, np.float32).tolist())


ACTOR_KEYS = ("actor", "log_std")


def split_params(params):
    """``(actor part, critic part)`` of an MLP actor-critic's parameters (they share nothing)."""
    p = params["params"]
    return ({k: v for k, v in p.items() if k in ACTOR_KEYS}, {k: v for k, v in p.items() if k not in ACTOR_KEYS})


def join_params(a, b):
    return {"params": {**a, **b}}


def init_train_state(learner: Learner, obs_shape, key, separate: bool = False) -> TrainState:
    params = learner.network.init(key, jnp.zeros((1, *obs_shape), jnp.float32))
    if separate:
        return TrainState(params, tuple(learner.optimizer.init(part) for part in split_params(params)))
    return TrainState(params, learner.optimizer.init(params))


def sample_actions(learner: Learner, params, obs, key):
    dist_params = learner.network.apply(params, obs, method=ActorCritic.policy)
    return make_dist(dist_params, learner.discrete).sample(seed=key)


def greedy_actions(learner: Learner, params, obs):
    return mode(learner.network.apply(params, obs, method=ActorCritic.policy), learner.discrete)


# ----------------------------------------------------------------------------- one PPO update


class UpdateData(NamedTuple):
    """Flattened ``[T * N]`` training data for the epochs."""

    obs: Any
    actions: Any
    old_log_probs: Any
    old_values: Any
    advantages: Any
    targets: Any


def prepare(config: Config, learner: Learner, params, batch: Batch, obs_stats) -> UpdateData:
    """Normalise observations with the frozen statistics, evaluate the rollout policy and value
    function on the batch and compute GAE advantages and TD(lambda) targets."""
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


def update_epoch(config: Config, learner: Learner, train: TrainState, data: UpdateData, key, part: str = "joint"):
    """One pass over the data in shuffled minibatches (permute and reshape once per epoch)."""
    n = data.obs.shape[0]
    perm = jax.random.permutation(key, n)
    minibatches = jax.tree.map(lambda x: x[perm].reshape(config.num_minibatches, -1, *x.shape[1:]), data)
    return jax.lax.scan(lambda t, mb: update_minibatch(config, learner, t, mb, part), train, minibatches)


def epochs(config: Config, learner: Learner, train: TrainState, data: UpdateData, key, part: str = "joint"):
    """``num_epochs`` epochs; the new state and the mean loss statistics. Parts use the same shuffles."""
    train, stats = jax.lax.scan(lambda t, k: update_epoch(config, learner, t, data, k, part), train,
                                jax.random.split(key, config.num_epochs))
    return train, jax.tree.map(jnp.mean, stats)


def learn_actor(config: Config, learner: Learner, train: TrainState, batch: Batch, obs_stats, key):
    """``prepare`` then the actor's epochs (``separate_updates``): what acting next needs."""
    data = prepare(config, learner, train.params, batch, obs_stats)
    train, stats = epochs(config, learner, train, data, key, "actor")
    return train, data, stats


def merge_stats(actor_stats, critic_stats):
    pi_loss, entropy, kl, clip_frac = actor_stats
    return pi_loss, critic_stats[0], entropy, kl, clip_frac


def learn(config: Config, learner: Learner, train: TrainState, batch: Batch, obs_stats, key):
    """``prepare`` then ``num_epochs`` epochs; returns the new state and mean loss statistics
    ``(pi_loss, v_loss, entropy, approx_kl, clip_frac)``."""
    if config.separate_updates:
        train, data, actor_stats = learn_actor(config, learner, train, batch, obs_stats, key)
        train, critic_stats = epochs(config, learner, train, data, key, "critic")
        return train, merge_stats(actor_stats, critic_stats)
    data = prepare(config, learner, train.params, batch, obs_stats)
    return epochs(config, learner, train, data, key)


# ----------------------------------------------------------------------------- JAX-env driver


def init_runner(config: Config, learner: Learner, env, key) -> RunnerState:
    k_net, k_env, k_run = jax.random.split(key, 3)
    train = init_train_state(learner, env.obs_shape, k_net, config.separate_updates)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(k_env, config.num_envs))
    return RunnerState(train, init_carry(env_state, obs, jnp), k_run, jnp.zeros((), jnp.int32))


def jax_update(config: Config, learner: Learner, env, runner: RunnerState):
    """Rollout + learn for one seed; the body of the training ``scan``."""
    key, k_roll, k_learn = jax.random.split(runner.key, 3)
    sample = lambda params, obs, k: sample_actions(learner, params, obs, k)
    carry, batch, episodes = jax_rollout(learner.spec, env, env.default_params, sample, runner.train.params,
                                         runner.env, k_roll)
    train, stats = learn(config, learner, runner.train, batch, carry.obs_stats, k_learn)
    metrics = Metrics(*episodes, *stats)
    return RunnerState(train, carry, key, runner.update + 1), metrics


def jax_train_chunk(config: Config, learner: Learner, env, runner: RunnerState, num_updates: int):
    return jax.lax.scan(lambda r, _: jax_update(config, learner, env, r), runner, None, length=num_updates)


def seed_mesh(num_seeds: int):
    """The largest set of CPU devices that divides the seeds evenly (both cores here)."""
    devices = jax.devices()
    n = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
    return jax.sharding.Mesh(np.array(devices[:n]), ("seeds",))


def over_seeds(fn: Callable, num_seeds: int, donate: bool = False):
    """``jit(vmap(fn))`` over a leading seed axis, sharded across CPU devices with ``shard_map``.

    Returns a ``SeedSharded`` callable that places its input on the seed mesh first (letting the
    jitted call reshard single-device inputs implicitly has hung here on jax 0.10.2)."""
    mesh = seed_mesh(num_seeds)
    batched = jax.vmap(fn)
    if mesh.devices.size > 1:
        spec = jax.sharding.PartitionSpec("seeds")
        batched = jax.shard_map(batched, mesh=mesh, in_specs=spec, out_specs=spec)
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seeds"))
    return SeedSharded(jax.jit(batched, donate_argnums=(0,) if donate else (), compiler_options=FAST), sharding)


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


def host_sampler(config: Config, learner: Learner, params, rng: np.random.Generator):
    """Action sampler for host rollouts: NumPy for MLPs (no jit dispatch per step; the noise for the
    whole rollout is drawn at once), jitted for CNNs."""
    if learner.network.network == "mlp":  # fetch only the actor: the critic may still be training
        forward = numpy_policy(jax.device_get({"params": split_params(params)[0]}), config.activation, learner.discrete)
        noise = None

        def act_numpy(obs):
            nonlocal noise
            dist_params = forward(obs)
            if noise is None:
                noise = iter(draw_noise(rng, dist_params, learner.discrete, config.num_steps))
            return sample_numpy(dist_params, next(noise), learner.discrete)

        return act_numpy
    sample = _jitted_sampler(learner)
    key = jax.random.PRNGKey(int(rng.integers(2**31)))

    def act(obs):
        nonlocal key
        key, k = jax.random.split(key)
        return np.asarray(sample(params, obs, k))

    return act


_SAMPLERS = {}


def _jitted_sampler(learner):
    if learner not in _SAMPLERS:
        _SAMPLERS[learner] = jax.jit(lambda p, o, k: sample_actions(learner, p, o, k), compiler_options=FAST)
    return _SAMPLERS[learner]


class HostRunner(NamedTuple):
    """What a host-env run carries between updates. The vector env is not saved: a resumed
    host run restarts its episodes (MuJoCo simulator state is not checkpointable)."""

    train: TrainState
    env: EnvCarry  # env_state None; obs kept for continuity within a process
    key: Any
    update: Any


def init_host_runner(config: Config, learner: Learner, env, key, venv) -> HostRunner:
    k_net, k_run = jax.random.split(key)
    obs, _ = venv.reset(seed=int(jax.random.randint(k_run, (), 0, 2**31 - 1)))
    train = init_train_state(learner, env.obs_shape, k_net, config.separate_updates)
    return HostRunner(train, init_carry(None, obs.astype(np.float32), np), k_run, np.zeros((), np.int32))


def host_update(config: Config, learner: Learner, learn_fns, venv, runner: HostRunner, seed: int, acting):
    """Python rollout on the vector env with the ``acting`` parameters, then the jitted update.

    With ``separate_updates`` the critic's epochs are dispatched asynchronously after the actor's and
    the actor's parameters are returned for the next rollout at once: the critic trains on the
    second core while the next rollout runs. Returns ``(runner, metrics, acting)``; the metrics
    stay on the device (fetching them would wait for the critic)."""
    key, k_learn = jax.random.split(runner.key)
    rng = np.random.default_rng([seed, int(runner.update)])
    sampler = host_sampler(config, learner, acting, rng)
    carry, batch, episodes = host_rollout(learner.spec, venv, sampler, runner.env)
    obs_stats = jax.tree.map(jnp.asarray, carry.obs_stats)
    if config.separate_updates:
        learn_actor_fn, learn_critic_fn = learn_fns
        train, data, actor_stats = learn_actor_fn(runner.train, batch, obs_stats, k_learn)
        acting = train.params
        train, critic_stats = learn_critic_fn(train, data, k_learn)
        stats = merge_stats(actor_stats, critic_stats)
    else:
        train, stats = learn_fns(runner.train, batch, obs_stats, k_learn)
        acting = train.params
    metrics = Metrics(*(np.float32(x) for x in episodes), *stats)
    return HostRunner(train, carry, key, runner.update + 1), metrics, acting


# ----------------------------------------------------------------------------- train / evaluate


class TrainResult(NamedTuple):
    state: Any  # RunnerState (JAX env) or list of HostRunner (host env), seed-stacked for JAX
    history: dict  # metric name -> float array [seeds, updates]
    steps_per_update: int

    @property
    def params(self):
        return self.state.train.params if isinstance(self.state, RunnerState) else [r.train.params for r in self.state]


def _stack_history(history: dict, metrics, axis_seed_first: bool) -> dict:
    new = {k: np.asarray(v, np.float64) for k, v in metrics._asdict().items()}
    if not axis_seed_first:  # [updates, seeds] -> [seeds, updates]
        new = {k: v.T for k, v in new.items()}
    return {k: np.concatenate([history[k], v], axis=1) if k in history else v for k, v in new.items()}


_COMPILED = {}


def _cached(key, build):
    """Compiled functions are reused across ``train`` calls with the same (config, env, seeds)."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def train(config: Config, env, key, *, seeds: int = 1, logger: Callable | None = None, resume: TrainResult | None = None,
          chunk_updates: int | None = None, until: int | None = None) -> TrainResult:
    """Train ``seeds`` independent PPO agents on ``env``.

    ``logger(result_so_far, updates_done)`` is called after every chunk of ``chunk_updates``
    updates (default: all of them); the run directory uses it to checkpoint. ``resume``
    continues a previous result (from ``checkpoint.load``) to ``config.num_updates``; ``until``
    stops after that many updates in all (as an interruption would; the schedule is unchanged).
    """
    learner = make_learner(config, env)
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}.")
    chunk = max(1, min(chunk_updates or config.num_updates, config.num_updates))
    until = config.num_updates if until is None else min(until, config.num_updates)
    if env.backend == "jax":
        return _train_jax(config, learner, env, key, seeds, logger, resume, chunk, until)
    return _train_host(config, learner, env, key, seeds, logger, resume, chunk, until)


def _jax_init(config, learner, env, seeds):
    # Runs once per run: compiled at LLVM -O0 (half the compile time; its speed does not matter).
    return _cached(("init", config, env.id, seeds), lambda: jax.jit(
        jax.vmap(lambda k: init_runner(config, learner, env, k)), compiler_options=RUN_ONCE))


def state_template(config: Config, env, key, seeds: int):
    """The structure (shapes and dtypes) of a run's state, for restoring a checkpoint."""
    learner = make_learner(config, env)
    if env.backend == "jax":
        return jax.eval_shape(_jax_init(config, learner, env, seeds), jax.random.split(key, seeds))
    train = jax.eval_shape(lambda k: init_train_state(learner, env.obs_shape, k, config.separate_updates), key)
    carry = init_carry(None, np.zeros((config.num_envs, *env.obs_shape), np.float32), np)
    return [HostRunner(train, carry, jax.eval_shape(lambda: key), np.zeros((), np.int32)) for _ in range(seeds)]


def _train_jax(config, learner, env, key, seeds, logger, resume, chunk, until):
    if resume is None:
        runner, history = _jax_init(config, learner, env, seeds)(jax.random.split(key, seeds)), {}
    else:
        runner, history = resume.state, resume.history
    done = int(np.asarray(runner.update).reshape(-1)[0])
    while done < until:
        n = min(chunk, until - done)
        step = _cached(("chunk", config, env.id, seeds, n), lambda: over_seeds(
            partial(jax_train_chunk, config, learner, env, num_updates=n), seeds, donate=True))
        runner, metrics = step(runner)
        history = _stack_history(history, jax.device_get(metrics), axis_seed_first=True)
        done += n
        if logger:
            logger(TrainResult(runner, history, config.batch_size), done)
    return TrainResult(runner, history, config.batch_size)


def _train_host(config, learner, env, key, seeds, logger, resume, chunk, until):
    if config.separate_updates:
        learn_fns = _cached(("learn_parts", config, env.id), lambda: (
            jax.jit(lambda t, b, s, k: learn_actor(config, learner, t, b, s, k), compiler_options=FAST),
            jax.jit(lambda t, d, k: epochs(config, learner, t, d, k, "critic"), compiler_options=FAST)))
    else:
        learn_fns = _cached(("learn", config, env.id), lambda: jax.jit(
            lambda t, b, s, k: learn(config, learner, t, b, s, k), compiler_options=FAST))
    seed_keys = jax.random.split(key, seeds)
    venvs = [env.vector(config.num_envs, seed=i) for i in range(seeds)]
    runners = [init_host_runner(config, learner, env, k, v) for k, v in zip(seed_keys, venvs)]
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
                    runners[i], m, acting[i] = host_update(config, learner, learn_fns, venvs[i], runners[i], i,
                                                           acting[i])
                    ms.append(m)
                per_seed.append(jax.tree.map(lambda *x: np.stack(x), *jax.device_get(ms)))
            history = _stack_history(history, jax.tree.map(lambda *x: np.stack(x), *per_seed), axis_seed_first=True)
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


def evaluate(config: Config, env, params, obs_stats, key, episodes: int = 20) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes with the deterministic policy (argmax / mean)."""
    learner = make_learner(config, env)
    if env.backend == "jax":
        fn = _cached(("eval", config, env.id, episodes), lambda: jax.jit(
            lambda p, s, k: _evaluate_jax(learner, env, p, s, k, episodes), compiler_options=FAST))
        return np.asarray(fn(params, obs_stats, key))
    return _evaluate_host(learner, env, params, obs_stats, int(jax.random.randint(key, (), 0, 2**31 - 1)), episodes)


def _evaluate_jax(learner, env, params, obs_stats, key, episodes):
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, episodes))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def body(carry, k):
        obs, state, ret, alive = carry
        actions = greedy_actions(learner, params, policy_input(learner.spec, obs_stats, obs.astype(jnp.float32)))
        obs, state, reward, done, _ = step(jax.random.split(k, episodes), state, clip_actions(learner.spec, actions, jnp),
                                           env.default_params)
        ret = ret + reward * alive
        return (obs, state, ret, alive * (1.0 - done)), None

    init = (obs, state, jnp.zeros(episodes), jnp.ones(episodes))
    (_, _, ret, _), _ = jax.lax.scan(body, init, jax.random.split(k_run, env.max_episode_steps))
    return ret


def _evaluate_host(learner, env, params, obs_stats, seed, episodes):
    venv = env.vector(episodes, seed)
    obs, _ = venv.reset(seed=seed)
    greedy = _cached(("greedy", learner), lambda: jax.jit(lambda p, o: greedy_actions(learner, p, o), compiler_options=FAST))
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
