"""Trust-region steps: conjugate gradient, Fisher-vector products, the natural-gradient step scaled to
a KL radius, and the backtracking line search of TRPO.

Schulman et al. 2015 (TRPO), section 6 and appendix C: maximise the surrogate ``L(theta)`` subject
to ``mean KL(pi_old || pi_theta) <= delta``. With ``g = grad L`` and ``F`` the Hessian of the mean KL
at ``theta_old`` (the Fisher information matrix), the step direction ``s = F^-1 g`` comes from
``cg_iters`` conjugate-gradient iterations that only need products ``F v``; it is scaled to the
boundary of the quadratic model, ``beta = sqrt(2 delta / s^T F s)``, and a backtracking line search
shrinks it until the true KL is within ``delta`` and the surrogate improves. The same step fits the
GAE paper's value function (Schulman et al. 2016, section 5) with the KL of a Gaussian value model,
whose Hessian is the Gauss-Newton matrix.

All functions work on flat parameter vectors (``jax.flatten_util.ravel_pytree``). Written by hand:
optax has no CG-with-operator natural-gradient step, and jax.scipy's ``cg`` has no fixed iteration
count inside ``jit`` (TRPO uses exactly 10).
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


def conjugate_gradient(mvp: Callable, b, iters: int, tol: float = 1e-10):
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given ``mvp(v) = A v`` (Hestenes and
    Stiefel 1952), starting from ``x = 0``; at most ``iters`` iterations, stopping once the squared
    residual is below ``tol``."""

    def body(_, state):
        x, r, p, rr = state
        active = rr > tol
        ap = mvp(p)
        alpha = jnp.where(active, rr / (p @ ap), 0.0)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = r @ r
        p = jnp.where(active, r + (rr_new / jnp.where(active, rr, 1.0)) * p, p)
        return x, r, p, jnp.where(active, rr_new, rr)

    x, *_ = jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(b), b, b, b @ b))
    return x


def hessian_vector_product(f: Callable, x, damping: float = 0.0):
    """``v -> (H + damping I) v`` with ``H`` the Hessian of scalar ``f`` at ``x``: forward-over-reverse
    (``jvp`` of ``grad``), linearised once so each product costs one tangent pass. For ``f`` the mean
    KL from a fixed old policy this is the Fisher-vector product at ``x = theta_old``."""
    _, hvp = jax.linearize(jax.grad(f), x)
    return lambda v: hvp(v) + damping * v


def fisher_vector_product(outputs_fn: Callable, x, kl_of_outputs: Callable, damping: float = 0.0,
                          forward_mode: bool = True):
    """``v -> (F + damping I) v`` with ``F`` the Hessian at ``x`` of ``kl_of_outputs(outputs_fn(x))``, a KL
    from fixed old outputs (distribution parameters, or values for the GAE value fit) that is minimal,
    zero, at ``x``. There the Hessian is ``J^T H_z J`` exactly (the term with the KL's gradient in ``z``
    vanishes): ``J v`` by a forward-mode pass, ``H_z`` by forward-over-reverse autodiff of the KL in the
    outputs ``z`` (per-sample, cheap), ``J^T`` by the transposed pass. Each product costs about one
    gradient; forward-over-reverse through the network (``hessian_vector_product``) costs about two.
    Pearlmutter 1994; Martens 2014 (generalised Gauss-Newton).

    ``forward_mode=False``: ``J^T`` is the reverse pass and ``J v`` its transpose, for an ``outputs_fn``
    with a custom VJP and no forward mode (``core.recurrent``'s GRU unroll)."""
    if forward_mode:
        z, jvp = jax.linearize(outputs_fn, x)
        vjp = jax.linear_transpose(jvp, x)
    else:
        z, vjp = jax.vjp(outputs_fn, x)
        transposed = jax.linear_transpose(vjp, z)
        jvp = lambda v: transposed((v,))[0]
    _, hz = jax.linearize(jax.grad(kl_of_outputs), z)
    return lambda v: vjp(hz(jvp(v)))[0] + damping * v


class NaturalStep(NamedTuple):
    step: jax.Array  # the full step, on the quadratic model's KL boundary
    expected_gain: jax.Array  # g . step: the first-order improvement of the objective


def natural_step(grad, fvp: Callable, max_kl: float, cg_iters: int) -> NaturalStep:
    """``beta F^-1 g`` with ``beta = sqrt(2 max_kl / s^T F s)``: the step to the boundary
    ``0.5 step^T F step = max_kl`` of the trust region (TRPO appendix C). Truncated natural policy
    gradient is this step taken as is; TRPO line-searches along it."""
    s = conjugate_gradient(fvp, grad, cg_iters)
    shs = s @ fvp(s)
    beta = jnp.sqrt(2.0 * max_kl / jnp.maximum(shs, 1e-12))
    return NaturalStep(beta * s, beta * (grad @ s))


class LineSearch(NamedTuple):
    x: jax.Array  # accepted parameters (the old ones if no fraction was accepted)
    gain: jax.Array  # objective(x) - objective(x_old)
    kl: jax.Array
    backtracks: jax.Array  # shrinkings before acceptance (max_steps if none accepted)


def line_search(objective_and_kl: Callable, x, step, max_kl: float, backtrack: float = 0.8,
                max_steps: int = 10) -> LineSearch:
    """Try ``x + backtrack^k step`` for ``k = 0, 1, ...``: accept the first with ``kl <= max_kl`` and
    ``objective`` improved over ``x``; keep ``x`` if none of ``max_steps`` fractions passes (TRPO sec.
    6: "exponentially shrinking the step until the objective improves and the KL constraint holds").

    ``objective_and_kl(params) -> (objective, kl from x)``; the objective is maximised.
    """
    base, _ = objective_and_kl(x)

    def candidate(k):
        y = x + (backtrack ** k) * step
        obj, kl = objective_and_kl(y)
        return y, obj - base, kl

    def not_accepted(state):
        k, _, gain, kl = state
        return (k + 1 < max_steps) & ~((kl <= max_kl) & (gain > 0))

    def next_fraction(state):
        k = state[0] + 1
        return (k, *candidate(k.astype(x.dtype)))

    k, y, gain, kl = jax.lax.while_loop(not_accepted, next_fraction, (jnp.zeros((), jnp.int32), *candidate(0.0)))
    accepted = (kl <= max_kl) & (gain > 0)
    return LineSearch(jnp.where(accepted, y, x), jnp.where(accepted, gain, 0.0), jnp.where(accepted, kl, 0.0),
                      jnp.where(accepted, k, max_steps))
