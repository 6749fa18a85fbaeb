"""Policy-gradient surrogate losses and value losses."""
import jax.numpy as jnp


def clipped_surrogate_loss(log_prob, old_log_prob, advantages, clip_eps: float):
    """PPO's clipped surrogate objective, Schulman et al. 2017, eq. (7), as a loss to minimise.

    ``L = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A))`` with ``r = exp(log_prob - old_log_prob)``.
    Returns ``(loss, info)`` where ``info`` holds the approximate KL ``mean((r - 1) - log r)``
    (Schulman's low-variance estimator) and the fraction of clipped ratios.
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -jnp.minimum(unclipped, clipped).mean()
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    clip_frac = (jnp.abs(ratio - 1.0) > clip_eps).mean()
    return loss, {"approx_kl": approx_kl, "clip_frac": clip_frac}


def value_loss(values, old_values, targets, clip_eps: float | None = None):
    """Squared-error value loss ``0.5 * mean((V - target)^2)``.

    With ``clip_eps`` the PPO reference code's clipped variant: the elementwise max of the
    unclipped error and that of ``old_V + clip(V - old_V, -eps, eps)``.
    """
    err = jnp.square(values - targets)
    if clip_eps is not None:
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        err = jnp.maximum(err, jnp.square(clipped - targets))
    return 0.5 * err.mean()


def normalize_advantages(adv, eps: float = 1e-8):
    return (adv - adv.mean()) / (adv.std() + eps)
