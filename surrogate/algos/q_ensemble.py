"""Q-ensemble exploration: ensemble UCB (Chen, Sidor, Abbeel & Schulman 2017, "UCB Exploration via
Q-Ensembles") and its two baselines, bootstrapped DQN (Osband, Blundell, Pritzel & Van Roy 2016) and
ensemble voting, as three registered algorithms that share everything but the acting rule.

K Q-heads on one shared torso (an MLP, or MinAtar's CNN), each trained with double-DQN targets from
its own target head (van Hasselt et al. 2016, eq. 4) on the transitions its Bernoulli bootstrap mask
includes (drawn when a transition is stored, kept beside it in the replay buffer). The loss sums the
heads' masked losses (each head gets its own loss's full gradient) and the gradient entering the shared
torso is scaled by 1/K, so the torso's is the heads' mean (Osband et al. 2016). Acting:
``ensemble_ucb``: ``argmax_a mean_k Q_k + ucb_lambda * std_k Q_k`` (Chen et al., Algorithm 2);
``bootstrapped_dqn``: a head drawn uniformly at each episode's start and followed for the whole
episode (Osband et al., Algorithm 1), kept in the policy's carry as head + 1 (the runtime zeroes the
carry at episode ends: 0 means "draw a head"); ``ensemble_voting``: the heads' majority vote (Chen
et al., Algorithm 1). Each optionally epsilon-greedy on top (``eps_start``/``eps_end``).
Evaluation: the heads' majority vote; ensemble UCB's, the ensemble mean's greedy action (lambda 0).
Actions are uniform before ``learning_starts``; DQN's epsilon schedule, optimiser and target update.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from surrogate.algos import dqn
from surrogate.algos.actor_critic import key_rng, positive
from surrogate.core.distributions import uniform_from_bits
from surrogate.core.ensemble import bootstrap_masks, masked_head_loss, scale_gradient, ucb_actions, vote_actions
from surrogate.core.networks import MLP, MinAtarCNN
from surrogate.core.q_networks import lecun_normal_np
from surrogate.core.replay import ReplayState, add_batch, init_replay, sample_indices
from surrogate.core.td import huber_loss, polyak, q_targets
from surrogate.errors import ConfigError
from surrogate.runtime.contract import Algorithm


@dataclass(frozen=True)
class Config:
    """Defaults: K = 10 heads, lambda = 0.1 (Chen et al. 2017), masks p = 0.5 (Osband et al. 2016's
    double-or-nothing bootstrap), double DQN, a 64-64 relu torso; the rest as DQN's CartPole preset."""

    env: str = "CartPole-v1"
    total_steps: int = 100_000
    num_envs: int = 10
    num_steps: int = 1
    buffer_size: int = 50_000
    learning_starts: int = 5_010
    batch_size: int = 100
    gradient_steps: int = 5
    learning_rate: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.98
    target_update_interval: int = 1
    eps_start: float = 0.0  # epsilon-greedy on top of the ensemble's rule (``dqn.epsilon``); 0: none
    eps_end: float = 0.0
    exploration_fraction: float = 0.5
    loss: Literal["huber", "l2"] = "l2"
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "swish", "elu"] = "relu"
    network: Literal["mlp", "minatar_cnn"] = "mlp"
    max_grad_norm: float = 10.0
    grad_clip: Literal["global_norm", "elementwise", "none"] = "elementwise"
    opt: Literal["adam", "centered_rmsprop"] = "adam"
    bootstrap_truncation: bool = True
    num_heads: int = 10
    mask_prob: float = 0.5  # probability that a head trains on a transition (its Bernoulli bootstrap mask)
    ucb_lambda: float = 0.1
    prior_scale: float = 0.0
    """> 0 adds ``prior_scale *`` a fixed random ensemble to every head (randomized prior functions,
    Osband, Aslanides & Cassirer 2018, eq. 6); 0: prior-free, as Chen et al. and Osband et al. 2016"""

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    def as_dqn(self) -> dqn.Config:
        """DQN's config of the fields the two share (what validates them; a one-head ensemble's twin)."""
        return dqn.Config(**{f.name: getattr(self, f.name) for f in dataclasses.fields(dqn.Config)
                             if hasattr(self, f.name)})

    def validate(self) -> "Config":
        self.as_dqn().validate()
        positive(self, "num_heads")
        if not 0.0 < self.mask_prob <= 1.0:
            raise ConfigError(f"mask_prob must be in (0, 1] (1: heads train on everything), got {self.mask_prob!r}.")
        if self.ucb_lambda < 0 or self.prior_scale < 0:
            raise ConfigError(f"ucb_lambda and prior_scale must be >= 0, got {self.ucb_lambda}, {self.prior_scale}.")
        if self.network not in ("mlp", "minatar_cnn"):
            raise ConfigError(f"network must be 'mlp' or 'minatar_cnn', got {self.network!r}.")
        return self


PRESETS = {
    # CartPole-v1: DQN's "cartpole" preset (rejax's schedule, 128-128, truncations bootstrapped) with ten heads
    "cartpole": Config(hidden=(128, 128)),
    # DeepSea 20 (bsuite): one episode (20 steps) per iteration, one gradient step of batch 128 per env step,
    # a 10k buffer and a 50-50 torso (bsuite's boot_dqn agent), the target copied after every episode, 1000 episodes
    "deep_sea": Config(env="DeepSea-bsuite-20", total_steps=20_000, num_envs=1, num_steps=20, buffer_size=10_000,
                       learning_starts=128, batch_size=128, gradient_steps=20, tau=0.0, hidden=(50, 50),
                       target_update_interval=1, eps_start=0.0, eps_end=0.0),
    # MinAtar: DQN's "minatar" preset (MinAtar's examples/dqn.py: replay 100k, batch 32, one update per frame,
    # centered RMSprop 2.5e-4, target copy every 1000) with ten heads on MinAtar's CNN; no epsilon (the heads explore)
    "minatar": Config(env="Breakout-MinAtar", total_steps=5_000_000, num_envs=1, num_steps=1, buffer_size=100_000,
                      learning_starts=5_000, batch_size=32, gradient_steps=1, learning_rate=2.5e-4, tau=0.0,
                      target_update_interval=1_000, loss="huber", network="minatar_cnn", opt="centered_rmsprop",
                      grad_clip="none"),
}
# + randomized prior functions (bsuite boot_dqn's scale 5) and UCB lambda 1: what found DeepSea 20's treasure
# in benchmarks/results/deep_sea.json (the paper's prior-free lambda 0.1 did not)
PRESETS["deep_sea_prior"] = dataclasses.replace(PRESETS["deep_sea"], prior_scale=5.0, ucb_lambda=1.0)

METRICS = ("q_loss", "q_mean", "q_std", "epsilon", "buffer_size")


# ----------------------------------------------------------------------------- the ensemble and the state


class EnsembleQ(nn.Module):
    """A shared torso and K linear heads: ``obs [..., *obs_shape] -> Q [K, ..., A]``."""

    action_dim: int
    num_heads: int
    hidden: tuple
    activation: str
    network: str

    @nn.compact
    def __call__(self, x):
        x = MinAtarCNN()(x) if self.network == "minatar_cnn" else MLP(self.hidden, self.activation)(x)
        x = scale_gradient(x, 1.0 / self.num_heads)  # the torso's gradient: the heads' mean (Osband et al.)
        kernel = self.param("heads_kernel", nn.initializers.zeros, (self.num_heads, x.shape[-1], self.action_dim))
        bias = self.param("heads_bias", nn.initializers.zeros, (self.num_heads, self.action_dim))
        return jnp.einsum("...h,kha->k...a", x, kernel) + bias.reshape(self.num_heads, *[1] * (x.ndim - 1), -1)


def network(config: Config, env) -> EnsembleQ:
    return EnsembleQ(env.action_dim, config.num_heads, tuple(config.hidden), config.activation, config.network)


def q_values(config: Config, env, params, obs):
    """``Q_k(obs, .)`` of every head, ``[K, ..., A]`` (the MLP sees observations flattened, the CNN images);
    with a prior, plus ``prior_scale *`` the fixed prior ensemble's."""
    if config.network == "mlp":
        obs = obs.reshape(*obs.shape[:obs.ndim - len(env.obs_shape)], -1)
    net, obs = network(config, env), obs.astype(jnp.float32)
    q = net.apply(params["online"], obs)
    return q + config.prior_scale * jax.lax.stop_gradient(net.apply(params["prior"], obs)) if config.prior_scale else q


def init_net(config: Config, env, rng: np.random.Generator) -> dict:
    """The ensemble's parameters drawn on the host (a test checks the structure against ``init``):
    the MLP torso and every head with Flax's default LeCun-normal init (``lecun_normal_np``), each
    head drawn independently (their only difference when ``mask_prob = 1``); zero biases. The CNN
    torso: ``MinAtarCNN.init`` (orthogonal, as the actor-critics')."""
    if config.network == "minatar_cnn":
        torso = MinAtarCNN().init(jax.random.PRNGKey(int(rng.integers(2**31 - 1))), jnp.zeros((1, *env.obs_shape)))
        torso, width = {"MinAtarCNN_0": jax.tree.map(np.asarray, torso["params"])}, MinAtarCNN.hidden
    else:
        sizes = [math.prod(env.obs_shape), *config.hidden]
        dense = lambda a, b: {"kernel": lecun_normal_np(rng, (a, b)), "bias": np.zeros(b, np.float32)}
        torso = {"MLP_0": {f"Dense_{i}": dense(a, b) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}}
        width = sizes[-1]
    heads = np.stack([lecun_normal_np(rng, (width, env.action_dim)) for _ in range(config.num_heads)])
    return {"params": {**torso, "heads_kernel": heads,
                       "heads_bias": np.zeros((config.num_heads, env.action_dim), np.float32)}}


class Transition(NamedTuple):
    """DQN's replay item plus the heads' bootstrap mask ``[K]`` (Osband et al. 2016, Algorithm 1)."""

    obs: Any
    action: Any
    reward: Any
    terminal: Any
    next_obs: Any
    mask: Any


class EnsembleState(NamedTuple):
    params: Any  # {"online": ..., "prior": ... (fixed; {} without a prior)}
    target: Any  # the target ensemble's online part
    opt_state: Any
    replay: ReplayState
    steps: Any


def init(config: Config, env, key) -> EnsembleState:
    if not env.discrete:
        raise ConfigError(f"Q-ensembles need discrete actions; {env.id} has continuous ones. Use ppo or trpo.")
    if config.network == "minatar_cnn" and len(env.obs_shape) != 3:
        raise ConfigError(f"network='minatar_cnn' needs image observations (H, W, C); {env.id} gives "
                          f"{env.obs_shape}. Use network='mlp'.")
    rng = key_rng(key, 1)
    online = init_net(config, env, rng)
    params = {"online": online, "prior": init_net(config, env, rng) if config.prior_scale > 0 else {}}
    zeros = lambda tree: jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), tree)
    opt_state = zeros(jax.eval_shape(dqn.optimizer(config).init, online))
    item = Transition(np.zeros(env.obs_shape, np.float32), np.zeros((), np.int32), np.float32(0), np.float32(0),
                      np.zeros(env.obs_shape, np.float32), np.zeros(config.num_heads, np.float32))
    replay = zeros(jax.eval_shape(lambda: init_replay(config.buffer_size, item)))
    return EnsembleState(params, jax.tree.map(np.copy, online), opt_state, replay, np.zeros((), np.int32))


# ----------------------------------------------------------------------------- acting


def policy(config: Config, state: EnsembleState):
    return state.params, dqn.epsilon(config, state.steps)


def act_words(config: Config, env) -> int:
    return 3  # the head draw (bootstrapped DQN), the epsilon coin, the random action


def initial_carry(config: Config, env, num_envs: int):
    return jnp.zeros((num_envs,), jnp.int32)  # 0: no head yet (bootstrapped DQN draws one)


def make_act(rule: str):
    """The acting function of ``rule`` ("ucb", "bootstrap" or "vote")."""

    def act(config: Config, env, deterministic: bool):
        def act_fn(params, obs, carry, bits):
            net_params, eps = params
            q = q_values(config, env, net_params, obs)  # [K, N, A]
            if deterministic:
                return (ucb_actions(q, 0.0) if rule == "ucb" else vote_actions(q)), carry
            if rule == "ucb":
                action = ucb_actions(q, config.ucb_lambda)
            elif rule == "vote":
                action = vote_actions(q)
            else:  # the episode's head: kept in the carry as head + 1, drawn where the carry is 0
                head = jnp.where(carry > 0, carry - 1, (bits[..., 0] % config.num_heads).astype(jnp.int32))
                action = jnp.take_along_axis(q, head[None, :, None], axis=0)[0].argmax(-1).astype(jnp.int32)
                carry = head + 1
            explore = uniform_from_bits(bits[..., 1]) < eps
            return jnp.where(explore, (bits[..., 2] % env.action_dim).astype(jnp.int32), action), carry

        return act_fn

    return act


# ----------------------------------------------------------------------------- learning


def ensemble_loss(config: Config, env, online, prior, mb: Transition, next_q_target):
    """``masked_head_loss`` of the heads' TD losses ``[K, B]`` with the stored masks (``mb.mask [B, K]``),
    and ``Q_k(s, a) [K, B]``. Head k's target is double DQN's ``r + gamma (1 - term) Q'_k(s', argmax_a
    Q_k(s', a))`` with its own target head ``Q'_k`` (``next_q_target [K, B, A]``)."""
    params = {"online": online, "prior": prior}
    q_next = jax.lax.stop_gradient(q_values(config, env, params, mb.next_obs))  # [K, B, A]
    y = jax.vmap(lambda nt, no: q_targets(mb.reward, mb.terminal, nt, no, gamma=config.gamma))(next_q_target, q_next)
    q_all = q_values(config, env, params, mb.obs)
    q = jnp.take_along_axis(q_all, jnp.broadcast_to(mb.action[None, :, None], (*q_all.shape[:2], 1)), -1)[..., 0]
    err = q - jax.lax.stop_gradient(y)
    return masked_head_loss(huber_loss(err) if config.loss == "huber" else 0.5 * err**2, mb.mask.T), q


def gradient_steps(config: Config, env, state: EnsembleState, batches: Transition):
    """One Adam step per minibatch; the target ensemble's (plus the same prior) ``Q'_k(s', .)`` of every
    minibatch in one forward pass."""
    opt, prior = dqn.optimizer(config), state.params["prior"]
    next_q_target = q_values(config, env, {"online": state.target, "prior": prior}, batches.next_obs)
    next_q_target = jnp.moveaxis(next_q_target, 0, 1)  # [steps, K, B, A]

    def step(carry, inputs):
        online, opt_state = carry
        mb, nq = inputs
        (loss, q), grads = jax.value_and_grad(lambda p: ensemble_loss(config, env, p, prior, mb, nq),
                                              has_aux=True)(online)
        updates, opt_state = opt.update(grads, opt_state, online)
        return (optax.apply_updates(online, updates), opt_state), (loss, q.mean(), q.std(0).mean())

    (online, opt_state), (loss, q_mean, q_std) = jax.lax.scan(step, (state.params["online"], state.opt_state),
                                                              (batches, next_q_target))
    return online, opt_state, loss.mean(), q_mean.mean(), q_std.mean()


def learn(config: Config, env, state: EnsembleState, experience, key):
    """DQN's ``learn`` with masks: store the transitions, each with its mask ``[K] ~ Bernoulli(mask_prob)``,
    train once more than ``learning_starts`` are stored, update the target every ``target_update_interval``."""
    key_mask, key_batch = jax.random.split(key)
    b = experience.batch
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    terminal = b.terminations if config.bootstrap_truncation else b.dones
    new = Transition(flat(b.obs), flat(b.actions), flat(b.rewards), flat(terminal).astype(jnp.float32),
                     flat(b.next_obs), bootstrap_masks(key_mask, (b.rewards.size, config.num_heads), config.mask_prob))
    state = state._replace(replay=add_batch(state.replay, new))
    steps = state.steps + config.steps_per_iteration
    idx = sample_indices(state.replay, key_batch, config.gradient_steps * config.batch_size)
    batches = jax.tree.map(lambda buf: buf[idx].reshape(config.gradient_steps, config.batch_size, *buf.shape[1:]),
                           state.replay.items)
    zero = jnp.zeros((), jnp.float32)
    online, opt_state, loss, q_mean, q_std = jax.lax.cond(
        steps > config.learning_starts, lambda s, b: gradient_steps(config, env, s, b),
        lambda s, b: (s.params["online"], s.opt_state, zero, zero, zero), state._replace(replay=None), batches)
    update = (steps // config.steps_per_iteration) % config.target_update_interval == 0
    target = jax.tree.map(lambda new, old: jnp.where(update, new, old), polyak(state.target, online, config.tau),
                          state.target)
    metrics = dict(q_loss=loss, q_mean=q_mean, q_std=q_std, epsilon=dqn.epsilon(config, state.steps),
                   buffer_size=state.replay.size.astype(jnp.float32))
    return EnsembleState({**state.params, "online": online}, target, opt_state, state.replay, steps), metrics


def _algo(name: str, rule: str, presets: dict) -> Algorithm:
    return Algorithm(name, Config, presets, METRICS, init, policy, make_act(rule), learn, act_words=act_words,
                     initial_carry=initial_carry)


# ensemble voting's and bootstrapped DQN's presets: the same with epsilon-greedy for voting (Chen et al.'s baseline)
VOTING_PRESETS = {k: dataclasses.replace(c, eps_start=1.0, eps_end=0.01 if k == "deep_sea" else 0.05)
                  for k, c in PRESETS.items()}
# on MinAtar, MinAtar's DQN schedule: 1 -> 0.1 over the first 100k of the 5M frames
VOTING_PRESETS["minatar"] = dataclasses.replace(VOTING_PRESETS["minatar"], eps_end=0.1, exploration_fraction=0.02)
UCB = _algo("ensemble_ucb", "ucb", PRESETS)
BOOTSTRAPPED = _algo("bootstrapped_dqn", "bootstrap", PRESETS)
VOTING = _algo("ensemble_voting", "vote", VOTING_PRESETS)
