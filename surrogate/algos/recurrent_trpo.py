"""Recurrent TRPO, TNPG and VPG: the TRPO family (``algos/trpo.py``: Schulman et al. 2015; rllab's TNPG and VPG)
with a GRU policy, for the partially observed rllab tasks (Duan et al. 2016, sec. 3.4 and 5: "a recurrent policy
... 32 hidden units", horizon 100, batch 50k, 300 iterations, "gradient clip 10").

The policy is rllab's ``GaussianGRUPolicy`` / ``CategoricalGRUPolicy`` (``rllab/policies/``): one GRU of 32 units
(``core/recurrent.py``) reading the observation and, with ``include_action`` (rllab's ``state_include_action``,
its default), the previous action (one-hot if discrete; zeros at an episode's first step), then a linear mean
(or logits) and a state-independent log-std. Departures: the paper names an LSTM, rllab's own recurrent policies
are GRUs (this is one, as rllab's); rllab learns the initial hidden state, here it is zero; rllab's recurrent TRPO
example takes Hessian-vector products by finite differences, here they are exact (Gauss-Newton,
``core.trust_region``).

Sequences are handled as recurrent PPO handles them (``algos/recurrent_ppo.py``, imported): the runtime stores
the carries at the rollout's first step (``Batch.start_carry``) and zeroes them after an episode ends; learning
replays every env's sequence from its start carry with ``resets[t] = dones[t-1]`` (``recurrent_ppo.replay``), so
the surrogate, the mean KL of the Fisher-vector products and of the line search, and the gradient all unroll the
GRU over whole sequences and no memory or gradient crosses an episode boundary. The data is env-major
``[N, T, ...]``: ``fvp_fraction`` keeps every k-th whole sequence.

Baselines: rllab's linear feature baseline (``baseline="linear"``, the benchmark's; its features are the raw
observations and the step index, ``algos/linear_baseline.py``), or a learned value function, a second GRU
(``baseline="learned"``: Adam epochs on minibatches of ``vf_minibatch_size`` whole sequences; GAE on its unroll as
in recurrent PPO). VPG's gradient is clipped to a global norm of ``max_grad_norm`` (10, the paper's); TRPO's and
TNPG's steps are rescaled to the KL radius, which makes them independent of the gradient's norm.
"""
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from surrogate._jax_setup import RUN_ONCE
from surrogate.algos import actor_critic as ac
from surrogate.algos import linear_baseline, trpo
from surrogate.algos import recurrent_ppo as rp
from surrogate.algos.actor_critic import Learner, TrainState, positive
from surrogate.core.distributions import make_dist, mode, noise_from_bits, sample_with_noise
from surrogate.core.recurrent import RecurrentActorCritic
from surrogate.errors import ConfigError
from surrogate.runtime import parts
from surrogate.runtime.contract import Algorithm
from surrogate.runtime.devices import cached
from surrogate.runtime.rollout import Experience, policy_input, rollout_spec


@dataclass(frozen=True)
class Config(trpo.Config):
    """TRPO's hyperparameters plus the GRU's. Defaults: the ``cartpole`` preset (CartPoleBalancing-rllab-LS)."""

    env: str = "CartPoleBalancing-rllab-LS"
    num_envs: int = 32
    num_steps: int = 100
    total_steps: int = 64_000
    gamma: float = 0.99
    gae_lambda: float = 1.0
    bootstrap_truncation: bool = False
    """rllab's: the 100-step horizon ends an episode (value 0 after it)"""
    max_kl: float = 0.1
    baseline: Literal["learned", "linear"] = "linear"
    hidden: tuple[int, ...] = ()
    """an MLP before the GRU (none: the GRU reads the observation and previous action, as in rllab)"""
    gru_size: int = 32
    include_action: bool = True
    """the previous action as an input (rllab's ``state_include_action``)"""
    max_grad_norm: float = 10.0
    """vpg: the policy gradient clipped to this global norm before Adam"""
    vf_minibatch_size: int = 8
    """learned baseline: whole env sequences per value minibatch"""

    def validate(self) -> "Config":
        name = ALGO_NAMES[type(self).method]
        if self.method != type(self).method:
            raise ConfigError(f"`surrogate train {name}` runs method {type(self).method}; for {self.method} run "
                              f"`surrogate train recurrent_{self.method}`.")
        if any(h <= 0 for h in self.hidden):
            raise ConfigError(f"hidden must list positive layer widths (or none), got {self.hidden!r}.")
        positive(self, "gru_size")
        positive(self, "max_grad_norm")
        if self.baseline == "learned" and self.vf_fit != "adam":
            raise ConfigError(f"{name}'s learned value function is a GRU fitted by Adam on whole sequences; "
                              f"vf_fit {self.vf_fit!r} is not available. Use --vf-fit adam or --baseline linear.")
        if self.baseline == "learned" and self.num_envs % self.vf_minibatch_size:
            raise ConfigError(f"{name}'s value minibatches are whole env sequences: num_envs ({self.num_envs}) must "
                              f"be divisible by vf_minibatch_size ({self.vf_minibatch_size}). Choose "
                              f"--vf-minibatch-size dividing {self.num_envs}.")
        if self.network not in ("auto", "mlp"):
            raise ConfigError(f"{name} has an MLP encoder only (vector observations). Use --network mlp/auto.")
        trpo.Config.validate(replace(self, hidden=self.hidden or (1,)))  # TRPO's checks; no MLP is allowed here
        return self


@dataclass(frozen=True)
class TNPGConfig(Config):
    method: Literal["trpo", "tnpg", "vpg"] = "tnpg"
    max_kl: float = 0.05


@dataclass(frozen=True)
class VPGConfig(Config):
    method: Literal["trpo", "tnpg", "vpg"] = "vpg"
    policy_lr: float = 0.005


CONFIGS = {"trpo": Config, "tnpg": TNPGConfig, "vpg": VPGConfig}
ALGO_NAMES = {method: f"recurrent_{method}" for method in CONFIGS}


def presets(method: str) -> dict:
    """``cartpole``: the defaults; ``rllab``: the paper's partially observed runs (horizon 100, 300 iterations
    of 50k steps = 500 envs x 100 steps, gamma 0.99, lambda 1, linear baseline, GRU of 32) with the first value
    of each method's basic-task grid (TRPO max KL 0.1, TNPG 0.05, VPG Adam 0.005: ../shared/paper-tables.md)."""
    config_class = CONFIGS[method]
    return {"cartpole": config_class(),
            "rllab": config_class(num_envs=500, num_steps=100, total_steps=300 * 50_000)}


METRICS = trpo.METRICS


# ----------------------------------------------------------------------------- learner, state and carry


def make_learner(config: Config, env) -> Learner:
    """The GRU policy (and value) network; optimisers ``(policy: clipped Adam for vpg, else None; value: Adam
    for the learned baseline, else None)``."""
    if len(env.obs_shape) != 1:
        raise ConfigError(f"{ALGO_NAMES[config.method]} needs vector observations; {env.id!r} has shape "
                          f"{env.obs_shape}.")
    network = RecurrentActorCritic(env.action_dim, env.discrete, tuple(config.hidden), config.gru_size,
                                   config.activation, config.log_std_init)
    policy_opt = (optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.policy_lr))
                  if config.method == "vpg" else None)
    value_opt = optax.flatten(optax.adam(config.vf_lr)) if config.baseline == "learned" else None
    return Learner(network, (policy_opt, value_opt), env.discrete, rollout_spec(config, env))


class Carry(NamedTuple):
    """The recurrent state of ``N`` envs: the policy's GRU ``[N, h]``, the value GRU's (learned baseline; else
    ``()``) and the previous action's features ``[N, A]`` (``include_action``; else ``()``)."""

    actor: Any
    critic: Any
    prev_action: Any


def initial_carry(config: Config, env, num_envs: int) -> Carry:
    zeros = lambda width: np.zeros((num_envs, width), np.float32)
    return Carry(zeros(config.gru_size), zeros(config.gru_size) if config.baseline == "learned" else (),
                 zeros(env.action_dim) if config.include_action else ())


def input_size(config: Config, env) -> int:
    return env.obs_shape[0] + (env.action_dim if config.include_action else 0)


def init(config: Config, env, key) -> TrainState:
    """Parameters ``{"actor": GRU policy, "critic": GRU value (learned baseline only)}``; optimiser state
    ``(policy's: vpg's Adam or (), value's: Adam's, or the linear baseline's coefficients)``."""
    learner = make_learner(config, env)
    init_params = cached(("recurrent_init", learner.network, (input_size(config, env),)), lambda: jax.jit(
        lambda k: learner.network.init_params(k, (input_size(config, env),)), compiler_options=RUN_ONCE))
    parts_ = ("actor", "critic") if config.baseline == "learned" else ("actor",)
    params = {part: jax.device_get(init_params(k)) for part, k in zip(parts_, jax.random.split(key))}
    policy_opt, value_opt = learner.optimizer
    policy_state = ac.zeros_like_init(lambda a: policy_opt.init(ravel_pytree(a)[0]), params["actor"]) if policy_opt else ()
    value_state = (ac.zeros_like_init(value_opt.init, params["critic"]) if value_opt
                   else linear_baseline.init_coeffs(env))
    return TrainState(params, (policy_state, value_state))


# ----------------------------------------------------------------------------- acting


def action_features(config: Config, env, actions):
    """What the next step reads of ``actions``: one-hot (discrete) or the action itself; ``()`` without
    ``include_action``."""
    if not config.include_action:
        return ()
    return jax.nn.one_hot(actions, env.action_dim) if env.discrete else actions.astype(jnp.float32)


def with_action(obs, prev_action):
    return obs if isinstance(prev_action, tuple) else jnp.concatenate([obs, prev_action], -1)


def act(config: Config, env, deterministic: bool):
    """``act(params, obs, carry, bits) -> (action, carry)``: one step of the GRUs on the observation and the
    previous action (the runtime has zeroed the carries of envs whose episode ended), then a sample of the
    policy with noise from ``bits``, or its mode."""
    network, discrete = make_learner(config, env).network, env.discrete

    def act_fn(params, obs, carry: Carry, bits):
        x, reset = with_action(obs, carry.prev_action), jnp.zeros(obs.shape[:1], bool)
        dist, _, actor = network.step(params["actor"], x, carry.actor, reset)
        critic = network.step(params["critic"], x, carry.critic, reset)[2] if "critic" in params else ()
        if deterministic:
            action = mode(dist, discrete)
        else:
            action = sample_with_noise(dist if discrete else (dist[0], jnp.exp(dist[1])),
                                       noise_from_bits(bits, discrete), discrete)
        return action, Carry(actor, critic, action_features(config, env, action))

    return act_fn


# ----------------------------------------------------------------------------- one update


def sequence_inputs(config: Config, env, learner: Learner, experience: Experience):
    """The GRUs' inputs as acting saw them, ``[T, N, d]``: the (normalised) observation with the previous
    action's features (``start_carry``'s at t = 0, zero after an episode end), the same for ``next_obs`` with
    the action just taken, and the episode starts ``resets [T, N]``."""
    batch, obs_stats = experience
    obs = policy_input(learner.spec, obs_stats, batch.obs.astype(jnp.float32))
    next_obs = policy_input(learner.spec, obs_stats, batch.next_obs.astype(jnp.float32))
    resets = rp.episode_starts(jnp.asarray(batch.dones))
    taken = action_features(config, env, jnp.asarray(batch.actions))
    if not config.include_action:
        return obs, next_obs, resets
    prev = jnp.concatenate([jnp.asarray(batch.start_carry.prev_action)[None], taken[:-1]])
    prev = jnp.where(resets[..., None], 0.0, prev)
    return with_action(obs, prev), with_action(next_obs, taken), resets


def prepare(config: Config, env, state: TrainState, experience: Experience):
    """``(data, features)``: env-major ``recurrent_ppo.Sequences`` of the rollout, with old log-probabilities from
    the policy's replay; with the linear baseline its GAE (lambda 1: returns minus baseline, Duan et al. 2016),
    returns (``linear_baseline``) and features ``[N, T, F]`` to refit it on; with the learned one recurrent PPO's
    ``prepare`` (GAE on the value GRU's unroll) and features None."""
    learner, (batch, obs_stats) = make_learner(config, env), experience
    inputs, next_inputs, resets = sequence_inputs(config, env, learner, experience)
    start = batch.start_carry
    if config.baseline == "learned":
        replayed = batch._replace(obs=inputs, next_obs=next_inputs, start_carry=(start.actor, start.critic))
        unnormalised = learner._replace(spec=learner.spec._replace(normalize_obs=False))  # inputs are normalised
        return rp.prepare(config, unnormalised, state.params, Experience(replayed, obs_stats)), None
    dist_params = learner.network.unroll(state.params["actor"], inputs, jnp.asarray(start.actor), resets)[0]
    old_log_probs = make_dist(dist_params, learner.discrete).log_prob(batch.actions)
    phi, next_phi = linear_baseline.features(learner, experience)
    values, advantages, returns = linear_baseline.advantages_and_returns(config, state.opt_state[1], phi, next_phi,
                                                                         batch)
    env_major = lambda x: jnp.swapaxes(x, 0, 1)
    data = rp.Sequences(*map(env_major, (inputs, batch.actions, old_log_probs, values, advantages, returns, resets)),
                        (jnp.asarray(start.actor),))
    return data, env_major(phi)


def prepare_parts(config: Config, env, state: TrainState, experience: Experience, key):
    """``prepare``; what the baseline's fit draws: the linear one's features, or the value minibatches' key."""
    data, features = prepare(config, env, state, experience)
    return data, (key if features is None else features)


def policy_outputs(learner: Learner, unravel):
    """``outputs(flat, sequences)``: the policy's distribution parameters, ``[N, T, ...]``, unrolled from each
    sequence's start carry (``recurrent_ppo.replay``) with the parameters ``unravel(flat)``."""
    return lambda flat, data: rp.replay(learner, unravel(flat), data, 0)


def step_actor(config: Config, env, state: TrainState, data, drawn):
    """The policy step of ``config.method`` (``trpo.policy_step``) with every term unrolled over the sequences
    (the Fisher-vector products' ``J v`` by transposing the GRU's hand-written reverse pass, which has no
    forward mode)."""
    learner = make_learner(config, env)
    flat, unravel = ravel_pytree(state.params["actor"])
    flat, policy_state, metrics = trpo.policy_step(config, learner, policy_outputs(learner, unravel), flat,
                                                   state.opt_state[0], data, forward_mode=False)
    return TrainState({**state.params, "actor": unravel(flat)}, (policy_state, state.opt_state[1])), metrics


def fit_critic(config: Config, env, state: TrainState, data, drawn):
    """The linear baseline's refit on the returns (``drawn``: its features), or the value GRU's Adam epochs on
    minibatches of whole sequences (``trpo.value_epochs``; ``drawn``: their shuffles' key)."""
    if config.baseline == "linear":
        coeffs, loss = linear_baseline.fit(drawn, data.targets)
        return TrainState(state.params, (state.opt_state[0], coeffs)), dict(value_loss=loss)
    learner = make_learner(config, env)
    values = lambda c, mb: rp.replay(learner, c, mb, 1)
    critic, value_state = trpo.value_epochs(config, values, learner.optimizer[1], state.params["critic"],
                                            state.opt_state[1], data, drawn)
    loss = 0.5 * jnp.mean(jnp.square(values(critic, data) - data.targets))
    return TrainState({**state.params, "critic": critic}, (state.opt_state[0], value_state)), dict(value_loss=loss)


def owners(state: TrainState) -> TrainState:
    """``parts.ActorCriticParts.owners``: 0 at the policy's leaves, 1 at the value's (GRU or linear baseline)."""
    fill = lambda tree, device: jax.tree.map(lambda _: device, tree)
    return TrainState({part: fill(p, int(part == "critic")) for part, p in state.params.items()},
                      (fill(state.opt_state[0], 0), fill(state.opt_state[1], 1)))


PARTS = parts.ActorCriticParts(prepare_parts, step_actor, fit_critic, owners)


def learn(config: Config, env, state: TrainState, experience: Experience, key):
    """One update: the policy step on the replayed sequences, then the baseline's fit."""
    return parts.learn_in_parts(PARTS, config, env, state, experience, key)


def make_algorithm(method: str) -> Algorithm:
    name = ALGO_NAMES[method]
    parts.register(name, lambda config: PARTS)
    return Algorithm(name, CONFIGS[method], presets(method), METRICS, init, ac.policy, act, learn,
                     act_words=ac.act_words, initial_carry=initial_carry)


TRPO, TNPG, VPG = (make_algorithm(method) for method in ("trpo", "tnpg", "vpg"))
