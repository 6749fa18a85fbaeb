"""Relative Entropy Policy Search (Peters, Muelling & Altun 2010): the sample-based dual and its weights.

REPS maximises the expected reward subject to ``KL(p || q) <= epsilon``, ``q`` the distribution the
samples came from, and to feature-matching stationarity constraints with multipliers ``nu``. The
solution reweights sample ``i`` by ``exp(delta_i / eta)``, ``delta_i = r_i + nu . (phi(s'_i) - phi(s_i))``
the Bellman error of the linear value ``nu . phi`` (eq. 6), and ``(eta, nu)`` minimise the dual
(eq. 7, with sample averages; ``rllab/algos/reps.py``, which this follows: no discount, ``phi`` rllab's
linear baseline features, ``phi = 0`` after an episode's last step).

Two departures from rllab. (1) An optional ridge term ``l2 |nu|^2 / 2`` on the dual. With ``phi = 0``
after the last step and the step index among the features, the sample dual is unbounded below whenever
episodes have a fixed length: ``nu . phi(s_t) = c (L - t)`` (representable: ``t/100`` and the constant
are features) makes every ``delta_i`` smaller by ``c``, which leaves the weights unchanged while
``g -> -inf`` linearly in ``c``. L-BFGS iterations on ``(eta, nu)`` jointly, warm-started batch after
batch as rllab's are, drift along that direction: in float32 here ``eta`` reached ~1e16 within 20
batches of Pendulum-v1. The ridge bounds the drift and leaves the ``eta``-stationarity, hence
``KL(p || q) = epsilon`` at the optimum, as it is. (2) ``eta`` is minimised exactly for each ``nu``
(``minimize_dual``) instead of jointly with it.
"""
import jax
import jax.numpy as jnp

from surrogate.core.lbfgs import lbfgs_minimize

def bellman_errors(v, rewards, feat_diff):
    """``delta_i = r_i + nu . (phi(s'_i) - phi(s_i))`` (eq. 6); ``feat_diff [B, F]``."""
    return rewards + feat_diff @ v


def dual(eta, v, rewards, feat_diff, epsilon: float, l2: float = 0.0):
    """``g(eta, nu) = eta epsilon + eta log mean_i exp(delta_i / eta) + l2 |nu|^2 / 2`` (eq. 7 with sample
    averages; the ridge term is ours, see above), computed with the largest ``delta_i / eta`` taken out
    of the exponential, as rllab does."""
    z = bellman_errors(v, rewards, feat_diff) / eta
    top = jax.lax.stop_gradient(z.max())
    return eta * epsilon + eta * jnp.log(jnp.mean(jnp.exp(z - top))) + eta * top + 0.5 * l2 * jnp.sum(v * v)


def dual_grad(eta, v, rewards, feat_diff, epsilon: float, l2: float = 0.0):
    """The dual's gradient in closed form, with ``p_i`` the normalised weights (``normalized_weights``):
    ``dg/deta = epsilon + log mean_i exp(delta_i / eta) - sum_i p_i delta_i / eta`` and ``dg/dnu =
    sum_i p_i (phi(s'_i) - phi(s_i)) + l2 nu`` (Peters et al. 2010, the dual's derivatives). At
    ``dg/deta = 0``, ``KL(p || uniform) = sum_i p_i delta_i / eta - log mean_i exp(delta_i / eta) = epsilon``."""
    delta = bellman_errors(v, rewards, feat_diff)
    p = normalized_weights(eta, v, rewards, feat_diff)
    z = delta / eta
    log_mean = jax.scipy.special.logsumexp(z) - jnp.log(z.shape[0])
    return epsilon + log_mean - p @ z, p @ feat_diff + l2 * v


def sample_weights(eta, v, rewards, feat_diff):
    """``exp(delta_i / eta - max_j delta_j / eta)``: the weights of REPS's policy fit (rllab's loss
    ``-mean(log pi * exp(delta / eta - max(delta / eta)))``)."""
    z = bellman_errors(v, rewards, feat_diff) / eta
    return jnp.exp(z - z.max())


def normalized_weights(eta, v, rewards, feat_diff):
    """The sample distribution ``p_i = exp(delta_i / eta) / sum_j exp(delta_j / eta)`` of REPS's solution."""
    w = sample_weights(eta, v, rewards, feat_diff)
    return w / w.sum()


def sample_kl(p):
    """``KL(p || uniform) = sum_i p_i log(n p_i)``: the divergence the constraint ``<= epsilon`` bounds,
    between REPS's reweighting of the ``n`` samples and the samples themselves."""
    return jnp.sum(jnp.where(p > 0, p * jnp.log(p * p.shape[0]), 0.0))


def tempered_kl(delta, eta):
    """``KL(softmax(delta / eta) || uniform)``, from log-probabilities; decreasing in ``eta``."""
    log_p = jax.nn.log_softmax(delta / eta)
    return jnp.sum(jnp.exp(log_p) * (log_p + jnp.log(delta.shape[0])))


def optimal_eta(v, rewards, feat_diff, epsilon: float, steps: int = 40):
    """``argmin_eta g(eta, nu)`` for a fixed ``nu``: ``dg/deta = epsilon - KL(p_eta || uniform)``
    (``dual_grad``) and the KL decreases in ``eta``, so the minimiser is the ``eta`` where the KL is
    ``epsilon``; found by bisection on ``log eta`` within 14 e-folds either side of the spread of the
    Bellman errors (the end of that range where the KL stays above or below ``epsilon`` throughout)."""
    delta = bellman_errors(v, rewards, feat_diff)
    centre = jnp.log(delta.max() - delta.min() + 1e-8)

    def halve(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = tempered_kl(delta, jnp.exp(mid)) > epsilon  # the KL is too large: eta must grow
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, steps, halve, (centre - 14.0, centre + 14.0))
    return jax.lax.stop_gradient(jnp.exp(0.5 * (lo + hi)))


def minimize_dual(v, rewards, feat_diff, epsilon: float, iters: int, l2: float = 0.0):
    """Minimise the dual over ``(eta, nu)``: ``iters`` L-BFGS iterations on ``h(nu) = min_eta g(eta, nu)``
    from the previous batch's ``nu``, the inner minimum found exactly (``optimal_eta``; ``h`` is convex, a
    partial minimum of the jointly convex ``g``, and its gradient is ``dg/dnu`` at ``eta*(nu)``: the envelope
    theorem). rllab runs 50 L-BFGS-B iterations on ``(eta, nu)`` jointly, ``eta`` bounded below by 0 and
    started at 15. Solved for, ``eta`` is positive by construction and sits at ``KL = epsilon`` (the
    constraint active) whatever ``nu``'s iterations reached; the joint iterations, ill-conditioned
    between ``eta`` and ``nu`` in float32, left it off by up to 12% here. Returns ``(eta, nu, dual value)``.

    The iterations stop as scipy's L-BFGS-B does: a line search without decrease clears the curvature
    memory, and a second one in a row ends the loop (float32 precision reached). On 12 duals of a REPS run
    (cart-pole balancing, the protocol) that ended 5-20x sooner than 50 iterations, at values within 1.4e-3
    (4e-6 relative) of the 50 iterations' (benchmarks/README.md, "L-BFGS under vmap")."""
    h = lambda v: dual(optimal_eta(v, rewards, feat_diff, epsilon), v, rewards, feat_diff, epsilon, l2)
    v, value = lbfgs_minimize(h, v, iters, patience=2, reset_on_stall=True)
    return optimal_eta(v, rewards, feat_diff, epsilon), v, value
