"""Action distributions for categorical and diagonal-Gaussian policies, plus the NumPy sampler
used by host rollouts.

Written out here (log-prob, entropy, sample: a few lines each) rather than taken from distrax:
``import distrax`` loads TensorFlow Probability's JAX substrate, over a third of a short run's start-up
(benchmarks/README.md, "Measurements behind the code"), one of the figures we are measured on. The tests check them
against SciPy's closed forms.
"""
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

LOG_2PI = math.log(2 * math.pi)


class Categorical(NamedTuple):
    logits: jax.Array

    def log_prob(self, actions):
        logp = jax.nn.log_softmax(self.logits)
        return jnp.take_along_axis(logp, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy(self):
        logp = jax.nn.log_softmax(self.logits)
        return -(jnp.exp(logp) * logp).sum(-1)

    def sample(self, seed):
        return jax.random.categorical(seed, self.logits)

    def kl(self, other: "Categorical"):
        """``KL(self || other)`` per sample."""
        logp, logq = jax.nn.log_softmax(self.logits), jax.nn.log_softmax(other.logits)
        return (jnp.exp(logp) * (logp - logq)).sum(-1)


class DiagGaussian(NamedTuple):
    """Independent normals over the last axis, parameterised by mean and log standard deviation."""

    mean: jax.Array
    log_std: jax.Array

    def log_prob(self, actions):
        z = (actions - self.mean) * jnp.exp(-self.log_std)
        return (-0.5 * z * z - self.log_std - 0.5 * LOG_2PI).sum(-1)

    def entropy(self):
        return (self.log_std + 0.5 * (1.0 + LOG_2PI)).sum(-1)

    def sample(self, seed):
        return self.mean + jnp.exp(self.log_std) * jax.random.normal(seed, self.mean.shape, self.mean.dtype)

    def kl(self, other: "DiagGaussian"):
        """``KL(self || other)`` per sample: sum over dimensions of
        ``log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2``."""
        var_ratio = jnp.exp(2.0 * (self.log_std - other.log_std))
        z = (self.mean - other.mean) * jnp.exp(-other.log_std)
        return (0.5 * (var_ratio + z * z - 1.0) - (self.log_std - other.log_std)).sum(-1)


def make_dist(dist_params, discrete: bool):
    """``logits`` -> Categorical; ``(mean, log_std)`` -> diagonal Gaussian."""
    if discrete:
        return Categorical(dist_params)
    return DiagGaussian(*dist_params)


def mode(dist_params, discrete: bool):
    """The deterministic action used for evaluation: argmax or the mean."""
    if discrete:
        return dist_params.argmax(-1)
    return dist_params[0]


def draw_noise(rng: np.random.Generator, shape, discrete: bool):
    """NumPy noise of ``shape`` for ``sample_with_noise``: standard Gumbel (Gumbel-max over logits) or
    standard normal; drawn for a whole rollout in one call."""
    return rng.gumbel(size=shape).astype(np.float32) if discrete else rng.standard_normal(shape, np.float32)


def uniform_from_bits(bits):
    """A float32 uniform in ``[0, 1)`` from each uint32 word's 23 high bits used as a mantissa (as
    ``jax.random.uniform`` does)."""
    bits = jnp.asarray(bits, jnp.uint32)
    return jax.lax.bitcast_convert_type((bits >> 9) | np.uint32(0x3F800000), jnp.float32) - 1.0


def noise_from_bits(bits, discrete: bool):
    """``draw_noise`` in JAX from raw uint32 ``bits``: the standard Gumbel or normal that
    ``jax.random.gumbel`` / ``jax.random.normal`` make of the same bits (bit for bit, checked by a
    test), so that a rollout's noise, step keys and reset keys can all come from one draw of bits
    (each separate ``jax.random`` call compiles its own threefry loop)."""
    unit = uniform_from_bits(bits)  # [0, 1)
    if discrete:
        low = np.float32(np.finfo(np.float32).tiny)  # jax.random.gumbel: -log(-log(uniform(tiny, 1)))
        return -jnp.log(-jnp.log(jnp.maximum(low, unit * (1 - low) + low)))
    low = np.nextafter(np.float32(-1), np.float32(0))  # jax.random.normal: sqrt(2) erfinv(uniform(-1, 1))
    return np.float32(np.sqrt(2)) * jax.scipy.special.erfinv(jnp.maximum(low, unit * (1 - low) + low))


def sample_with_noise(dist_params, noise, discrete: bool):
    """A sample given pre-drawn ``noise``: ``argmax(logits + gumbel)`` or ``mean + std * normal``, with
    ``dist_params`` the logits or ``(mean, std)``; NumPy or JAX arrays."""
    if discrete:
        return (dist_params + noise).argmax(-1)
    mean, std = dist_params
    return mean + std * noise
