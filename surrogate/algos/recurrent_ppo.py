"""Recurrent PPO: PPO's clipped surrogate (Schulman et al. 2017, eq. 7) and value loss (eq. 9) with a
recurrent actor and a recurrent critic (GRUs, ``core/recurrent.py``), for partially observed tasks.

Backpropagation through time on whole sequences, as in the recurrent policies of Heess et al. 2015
("Memory-based control with recurrent neural networks") and as sb3-contrib's ``RecurrentPPO`` (used
by rl-zoo3's ``ppo_lstm``) trains them:

* acting carries each env's GRU states; the runtime stores them at the rollout's first step
  (``Batch.start_carry``) and zeros them right after an episode ends (``rollout.reset_where``);
* learning replays the rollout with ``unroll`` from the stored carries, with ``resets[t] = dones[t-1]``
  (``resets[0]`` is false: a stored carry was already zeroed), so before the first gradient step the
  recomputed action probabilities are the rollout's, bit for bit (a test checks);
* a minibatch is a set of whole env sequences: the ``[T, N]`` rollout split along N (columns), so
  ``num_envs`` must be divisible by ``num_minibatches``.

The actor and the critic are separate GRUs (rl-zoo3's ``enable_critic_lstm``), each with its own
optimiser: the update is PPO's ``separate_updates`` (the actor's epochs, then the critic's, on the
same data and shuffles), so on a JAX env one seed's two parts run on two cores at once
(``runtime.parts``). Everything else is PPO's (``algos/ppo.py``): the config, the optimiser and its
schedule, the loss terms, the shuffles and the epochs (``ppo.epochs``: the data here is env-major
``[N, T, ...]``, so its rows are whole sequences), and GAE (Schulman et al. 2016, ``core/advantages``)
on values from the critic's unroll.
"""
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from surrogate._jax_setup import RUN_ONCE
from surrogate.algos import actor_critic as ac
from surrogate.algos import ppo
from surrogate.algos.actor_critic import Learner, TrainState, positive
from surrogate.core.advantages import gae
from surrogate.core.distributions import make_dist, mode, noise_from_bits, sample_with_noise
from surrogate.core.recurrent import RecurrentActorCritic
from surrogate.errors import ConfigError
from surrogate.runtime import parts
from surrogate.runtime.contract import Algorithm
from surrogate.runtime.devices import cached
from surrogate.runtime.rollout import Experience, policy_input


@dataclass(frozen=True)
class Config(ppo.Config):
    """PPO's hyperparameters plus the GRUs'. Defaults are rl-zoo3's ``ppo_lstm`` values for CartPoleNoVel-v1
    (``PRESETS["cartpole-novel"]``). ``hidden``: an MLP before each GRU (none: the GRU reads the
    observation, as rl-zoo3's LSTM does); ``num_minibatches`` splits the envs (whole sequences)."""

    env: str = "CartPoleNoVel-v1"
    normalize_obs: bool = True
    normalize_reward: bool = True
    hidden: tuple[int, ...] = ()
    activation: Literal["tanh", "relu", "swish", "elu"] = "relu"
    separate_updates: bool = True
    """always on here: the actor and the critic are separate GRUs, each with its own optimiser"""
    gru_size: int = 64
    anneal_clip: bool = True
    """decay clip_eps linearly to 0 over training (rl-zoo3's ``lin_0.2``; the value clip with it)"""

    def validate(self) -> "Config":
        positive(self, "num_minibatches")
        if self.num_envs % self.num_minibatches:
            raise ConfigError(
                f"Recurrent PPO's minibatches are whole env sequences: num_envs ({self.num_envs}) must be "
                f"divisible by num_minibatches ({self.num_minibatches}). Choose --num-minibatches dividing "
                f"{self.num_envs}, or change --num-envs.")
        if any(h <= 0 for h in self.hidden):
            raise ConfigError(f"hidden must list positive layer widths (or none), got {self.hidden!r}.")
        ppo.Config.validate(replace(self, hidden=self.hidden or (1,)))  # PPO's checks; no MLP is allowed here
        positive(self, "gru_size")
        if not self.separate_updates:
            raise ConfigError("recurrent_ppo's actor and critic are separate GRUs, each with its own optimiser: "
                              "its updates are always separate. Drop --no-separate-updates.")
        if self.network in ("nature_cnn", "minatar_cnn"):
            raise ConfigError("recurrent_ppo has an MLP encoder only (vector observations). Use --network mlp/auto.")
        return self


# rl-zoo3 hyperparams/ppo_lstm.yml, CartPoleNoVel-v1: 8 envs x 32 steps, batch 256 (one minibatch of all 8
# sequences), 20 epochs, gamma 0.98, lambda 0.8, lr 1e-3 and clip 0.2 both decaying linearly to 0, ent 0,
# observations normalised, an LSTM of 64 for the actor and one for the critic. Differs: GRUs of 64 with a
# linear head (rl-zoo3: a 64-unit ReLU layer after each LSTM), separate optimisers (rl-zoo3: one for the
# joint loss), rewards scaled and the value loss clipped (rl-zoo3 does neither). Measured, 8 seeds each:
# this preset reached 475 in all 8 (median 30k steps) and ended >= 475 in 8; one GRU shared by actor and
# critic with a joint optimiser, median 50k, 3 ended >= 475; without reward scaling 4 of 8 reached 475.
# 16 more seeds: all reached 475, median 25k steps.
PRESETS = {"cartpole-novel": Config()}
METRICS = ppo.METRICS


# ----------------------------------------------------------------------------- learner and state


def make_learner(config: Config, env) -> Learner:
    """PPO's optimiser and schedule (``ppo.make_learner``) with the recurrent network (the actor uses
    its policy head, the critic its value head: one module, two sets of parameters)."""
    if len(env.obs_shape) != 1:
        raise ConfigError(f"recurrent_ppo needs vector observations; {env.id!r} has shape {env.obs_shape}.")
    network = RecurrentActorCritic(env.action_dim, env.discrete, tuple(config.hidden), config.gru_size,
                                   config.activation, config.log_std_init)
    return ppo.make_learner(config, env)._replace(network=network)


class State(NamedTuple):
    params: Any  # {"actor": ..., "critic": ...}
    opt_state: Any  # (actor's, critic's)
    updates: Any  # int32 updates done (the clip range's schedule)


def init(config: Config, env, key) -> State:
    learner = make_learner(config, env)
    init_params = cached(("recurrent_init", learner.network, env.obs_shape), lambda: jax.jit(
        lambda k: learner.network.init_params(k, env.obs_shape), compiler_options=RUN_ONCE))
    params = {part: jax.device_get(init_params(k)) for part, k in zip(("actor", "critic"), jax.random.split(key))}
    opt_state = tuple(ac.zeros_like_init(learner.optimizer.init, params[part]) for part in ("actor", "critic"))
    return State(params, opt_state, np.zeros((), np.int32))


def initial_carry(config: Config, env, num_envs: int):
    """The actor's and the critic's GRU states, ``([N, h], [N, h])``."""
    return tuple(np.zeros((num_envs, config.gru_size), np.float32) for _ in range(2))


# ----------------------------------------------------------------------------- acting


def act(config: Config, env, deterministic: bool):
    """``act(params, obs, carry, bits) -> (action, carry)``: one step of both GRUs (no reset: the runtime
    has zeroed the carries of envs whose episode ended; the critic's carry is kept for the replay), then
    a sample of the actor's policy with noise from ``bits``, or its mode."""
    network, discrete = make_learner(config, env).network, env.discrete

    def act_fn(params, obs, carry, bits):
        reset = jnp.zeros(obs.shape[:1], bool)
        dist, _, actor_carry = network.step(params["actor"], obs, carry[0], reset)
        critic_carry = network.step(params["critic"], obs, carry[1], reset)[2]
        if deterministic:
            return mode(dist, discrete), (actor_carry, critic_carry)
        dist = dist if discrete else (dist[0], jnp.exp(dist[1]))
        return sample_with_noise(dist, noise_from_bits(bits, discrete), discrete), (actor_carry, critic_carry)

    return act_fn


# ----------------------------------------------------------------------------- one update


class Sequences(NamedTuple):
    """One rollout's training data as whole env sequences, env-major ``[N, T, ...]``: PPO's minibatches
    (``shuffled_minibatches``: rows of the leading axis) are then sets of whole sequences."""

    obs: Any
    actions: Any
    old_log_probs: Any
    old_values: Any
    advantages: Any
    targets: Any
    resets: Any  # [N, T] episode starts: the carries are zeroed before step t where true
    start_carry: Any  # ([N, h], [N, h]) the actor's and the critic's carries at the rollout's start


def episode_starts(dones):
    """``resets[t] = dones[t - 1]`` for ``t >= 1`` and false at ``t = 0`` (``[T, N]``)."""
    return jnp.concatenate([jnp.zeros_like(dones[:1]), dones[:-1]])


def prepare(config: Config, learner: Learner, params, experience: Experience) -> Sequences:
    """Replay the rollout with ``unroll`` from its start carries (observations normalised with the
    rollout's updated statistics, as ``actor_critic.prepare``), then GAE advantages and TD(lambda)
    targets (Schulman et al. 2016). A truncated episode bootstraps from V(final obs) given the critic's
    carry after its last step (as sb3-contrib does)."""
    batch, obs_stats = experience
    obs = policy_input(learner.spec, obs_stats, batch.obs.astype(jnp.float32))
    next_obs = policy_input(learner.spec, obs_stats, batch.next_obs.astype(jnp.float32))
    resets = episode_starts(jnp.asarray(batch.dones))
    net, (actor0, critic0) = learner.network, batch.start_carry
    dist_params = net.unroll(params["actor"], obs, actor0, resets)[0]
    _, values, carries = net.unroll(params["critic"], obs, critic0, resets, all_carries=True)
    T, N = values.shape
    if config.bootstrap_truncation:  # V(s_{t+1}) from the critic's carry after step t, for every t
        flat = lambda x: x.reshape(T * N, *x.shape[2:])
        next_values = net.step(params["critic"], flat(next_obs), flat(carries), jnp.zeros(T * N, bool))[1]
        next_values, terminations = next_values.reshape(T, N), batch.terminations
    else:  # every episode end terminal: only the last step needs a value beyond the rollout
        last = net.step(params["critic"], next_obs[-1], carries[-1], jnp.zeros(N, bool))[1]
        next_values, terminations = jnp.concatenate([values[1:], last[None]]), batch.dones
    old_log_probs = make_dist(dist_params, learner.discrete).log_prob(batch.actions)
    advantages, targets = gae(batch.rewards, values, next_values, terminations, batch.dones,
                              config.gamma, config.gae_lambda)
    env_major = lambda x: jnp.swapaxes(x, 0, 1)
    return Sequences(*map(env_major, (obs, batch.actions, old_log_probs, values, advantages, targets, resets)),
                     tuple(jnp.asarray(c) for c in batch.start_carry))


def replay(learner: Learner, params, mb: Sequences, part: int):
    """The policy (``part`` 0) or the values (1) on a minibatch of sequences, env-major, recomputed by
    backpropagation through time from each sequence's start carry."""
    swap = lambda x: jnp.swapaxes(x, 0, 1)  # env-major <-> time-major
    dist_params, values, _ = learner.network.unroll(params, swap(mb.obs), mb.start_carry[part], swap(mb.resets))
    return jax.tree.map(swap, dist_params) if part == 0 else swap(values)


def prepare_parts(config: Config, env, state: State, experience: Experience, key):
    """``prepare``; what both parts draw: the epochs' shuffles (``ppo.shuffles``) and this update's clip."""
    data = prepare(config, make_learner(config, env), state.params, experience)
    clip = config.clip_eps * (1.0 - state.updates / config.num_updates) if config.anneal_clip else config.clip_eps
    return data, (ppo.shuffles(config, data, key), clip)


def step_actor(config: Config, env, state: State, data: Sequences, drawn):
    """The actor's epochs on PPO's clipped surrogate (``ppo.actor_terms``) with its own optimiser."""
    (perms, clip), learner = drawn, make_learner(config, env)
    loss = lambda p, mb: ppo.actor_terms(replace(config, clip_eps=clip), learner, replay(learner, p, mb, 0), mb)
    t, metrics = ppo.epochs(config, loss, learner.optimizer, TrainState(state.params["actor"], state.opt_state[0]),
                            data, perms)
    return State({**state.params, "actor": t.params}, (t.opt_state, state.opt_state[1]), state.updates + 1), metrics


def fit_critic(config: Config, env, state: State, data: Sequences, drawn):
    """The critic's epochs on PPO's value loss (``ppo.critic_terms``) with its own optimiser."""
    (perms, clip), learner = drawn, make_learner(config, env)
    loss = lambda p, mb: ppo.critic_terms(replace(config, clip_eps=clip), replay(learner, p, mb, 1), mb)
    t, metrics = ppo.epochs(config, loss, learner.optimizer, TrainState(state.params["critic"], state.opt_state[1]),
                            data, perms)
    return State({**state.params, "critic": t.params}, (state.opt_state[0], t.opt_state), state.updates), metrics


def owners(state: State) -> State:
    """``parts.ActorCriticParts.owners``: 0 at the actor's leaves (and the update count), 1 at the critic's."""
    fill = lambda tree, device: jax.tree.map(lambda _: device, tree)
    return State({"actor": fill(state.params["actor"], 0), "critic": fill(state.params["critic"], 1)},
                 (fill(state.opt_state[0], 0), fill(state.opt_state[1], 1)), 0)


PARTS = parts.ActorCriticParts(prepare_parts, step_actor, fit_critic, owners)
parts.register("recurrent_ppo", lambda config: PARTS)


def learn(config: Config, env, state: State, experience: Experience, key):
    """``prepare``, then the actor's and the critic's epochs on minibatches of whole sequences."""
    return parts.learn_in_parts(PARTS, config, env, state, experience, key)


ALGO = Algorithm("recurrent_ppo", Config, PRESETS, METRICS, init, ac.policy, act, learn, act_words=ac.act_words,
                 initial_carry=initial_carry)
