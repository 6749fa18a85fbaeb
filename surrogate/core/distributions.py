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


def sample_numpy(rng: np.random.Generator, dist_params, discrete: bool):
    """Sample from NumPy parameters: logits (Gumbel-max) or ``(mean, std)``."""
    if discrete:
        g = rng.gumbel(size=dist_params.shape).astype(dist_params.dtype)
        return (dist_params + g).argmax(-1)
    mean, std = dist_params
    return mean + std * rng.standard_normal(mean.shape, np.float32)
