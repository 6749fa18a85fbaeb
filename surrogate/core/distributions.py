"""Action distributions for categorical and diagonal-Gaussian policies (distrax),
plus the NumPy sampler used by host rollouts."""
import distrax
import jax.numpy as jnp
import numpy as np


def make_dist(dist_params, discrete: bool):
    """``logits`` -> Categorical; ``(mean, log_std)`` -> diagonal Gaussian."""
    if discrete:
        return distrax.Categorical(logits=dist_params)
    mean, log_std = dist_params
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


def mode(dist_params, discrete: bool):
    """The deterministic action used for evaluation: argmax or the mean."""
    if discrete:
        return dist_params.argmax(-1)
    return dist_params[0]


def draw_noise(rng: np.random.Generator, dist_params, discrete: bool, num_steps: int):
    """The noise for ``num_steps`` samples of the shape of ``dist_params``, drawn in one call:
    standard Gumbel (for Gumbel-max over logits) or standard normal."""
    shape = (num_steps, *(dist_params.shape if discrete else dist_params[0].shape))
    return rng.gumbel(size=shape).astype(np.float32) if discrete else rng.standard_normal(shape, np.float32)


def sample_numpy(dist_params, noise, discrete: bool):
    """Sample from NumPy parameters with pre-drawn ``noise``: logits (Gumbel-max) or ``(mean, std)``."""
    if discrete:
        return (dist_params + noise).argmax(-1)
    mean, std = dist_params
    return mean + std * noise
