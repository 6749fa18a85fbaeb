"""Q-networks (a torso with a linear Q head or dueling heads, their parameters drawn in NumPy) and acting on them.

DQN (Mnih et al. 2015) maps a state to one value per action; the dueling architecture (Wang et al.
2016, eq. 9) splits the last layer into a state value and advantages, ``Q = V + A - mean_a A``.
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from surrogate.core.distributions import noise_from_bits, uniform_from_bits
from surrogate.core.networks import MLP, TORSOS


class QNetwork(nn.Module):
    """A torso (MLP, or a CNN of ``core.networks.TORSOS``: the Nature CNN, the MinAtar CNN) with a linear Q head, or the dueling heads
    ``Q = V + A - mean_a A`` (Wang et al. 2016, eq. 9). Heads: Flax's default init (LeCun normal)."""

    action_dim: int
    hidden: tuple
    activation: str
    dueling: bool
    torso: str = "mlp"

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden, self.activation)(obs) if self.torso == "mlp" else TORSOS[self.torso]()(obs)
        if not self.dueling:
            return nn.Dense(self.action_dim)(x)
        value, advantage = nn.Dense(1)(x), nn.Dense(self.action_dim)(x)
        return value + advantage - advantage.mean(-1, keepdims=True)


def lecun_normal_np(rng: np.random.Generator, shape) -> np.ndarray:
    """Flax's default ``Dense`` kernel init (rejax's): a normal truncated to +-2 std with variance 1 / fan_in."""
    z = rng.standard_normal(shape)
    while (bad := np.abs(z) > 2).any():
        z[bad] = rng.standard_normal(int(bad.sum()))
    return (z * np.sqrt(1.0 / shape[0]) / 0.87962566103423978).astype(np.float32)


def mlp_q_params_np(rng: np.random.Generator, obs_shape, hidden, action_dim: int, dueling: bool) -> dict:
    """What ``QNetwork(torso="mlp").init`` gives (structure and distribution: LeCun-normal kernels, zero
    biases), drawn in NumPy: the torso ``MLP_0``, then the Q head, or the V and A heads."""
    sizes = [math.prod(obs_shape), *hidden]
    dense = lambda a, b: {"kernel": lecun_normal_np(rng, (a, b)), "bias": np.zeros(b, np.float32)}
    torso = {f"Dense_{i}": dense(a, b) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}
    heads = (1, action_dim) if dueling else (action_dim,)
    return {"params": {"MLP_0": torso, **{f"Dense_{i}": dense(sizes[-1], n) for i, n in enumerate(heads)}}}


def explore_from_bits(q, bits, eps, soft_tau: float = 0.0):
    """An action per row of ``q [..., A]`` from raw uint32 ``bits [..., 2 (+ A)]``: with probability ``eps``
    uniform (``bits[..., 1] % A``; the coin is a uniform in [0, 1) from the 23 high bits of
    ``bits[..., 0]`` as a mantissa, as ``jax.random.uniform``), else greedy (epsilon-greedy, Mnih et al.
    2015), or with ``soft_tau > 0`` a sample of the Boltzmann policy ``softmax(Q / soft_tau)`` by the
    Gumbel-max trick on ``bits[..., 2:]`` (soft Q-learning, Haarnoja et al. 2017)."""
    action = q.argmax(-1)
    if soft_tau > 0:
        action = (q / soft_tau + noise_from_bits(bits[..., 2:], True)).argmax(-1)
    unit = uniform_from_bits(bits[..., 0])
    return jnp.where(unit < eps, (bits[..., 1] % q.shape[-1]).astype(action.dtype), action)


def optimizer(config):
    """DQN's and the Q-ensembles' optimiser: Adam (Kingma & Ba 2015) or MinAtar's centered RMSprop (torch's:
    ``sqrt(E g^2 - (E g)^2) + eps``), after clipping the gradient's global norm or each element (rejax), or not."""
    clip = {"global_norm": lambda: optax.clip_by_global_norm(config.max_grad_norm), "none": optax.identity,
            "elementwise": lambda: optax.clip(config.max_grad_norm)}[config.grad_clip]()
    if getattr(config, "opt", "adam") == "centered_rmsprop":
        return optax.chain(clip, optax.rmsprop(config.learning_rate, decay=0.95, eps=0.01, eps_in_sqrt=False,
                                               centered=True))
    return optax.chain(clip, optax.adam(config.learning_rate))
