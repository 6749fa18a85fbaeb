"""L-BFGS inside ``jit``, and the weighted maximum-likelihood policy fit that RWR and REPS make with it.

rllab runs ``scipy.optimize.fmin_l_bfgs_b(maxiter=n)`` on the host (``rllab/optimizers/lbfgs_optimizer.py``,
``rllab/algos/reps.py``); here the same number of iterations of ``optax.lbfgs`` (memory 10, as scipy's
default, with optax's zoom line search) run in a ``lax.while_loop``, so the whole update stays one program.
"""
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree


def lbfgs_minimize(fun, x0, iters: int, memory: int = 10, patience: int | None = None, reset_on_stall: bool = False):
    """At most ``iters`` L-BFGS iterations on ``fun(x) -> scalar`` from the pytree ``x0`` (Nocedal & Wright
    1999, algorithm 7.5); returns ``(x, fun(x))`` at the lowest point visited (optax's zoom line search
    can end on a step uphill when it fails; scipy's L-BFGS-B returns to the previous point then). An
    iteration whose step makes ``fun`` or its gradient non-finite is not taken (the point stays where it
    was). ``patience``: stop after that many consecutive
    iterations that do not lower ``fun`` (the line search found no decrease: converged to float32
    precision, as scipy stops on a failed line search); ``None`` runs all ``iters``. ``reset_on_stall``:
    an iteration that does not lower ``fun`` also clears the curvature memory (the next step is a scaled
    gradient step), as scipy's L-BFGS-B does before it gives up; with ``patience=2`` the loop then stops
    only when that fresh start fails too.

    The value and gradient at each new point are the ones the zoom line search computed there (carried in
    the loop, never recomputed: ``optax.value_and_grad_from_state``'s ``lax.cond`` would, under ``vmap``
    over seeds, evaluate the gradient again every iteration). The loop is a ``lax.while_loop``, so with
    ``patience`` the iterations after convergence cost nothing: on REPS's dual the zoom line search spends
    its 20 steps on each of the ~40 iterations after float32 convergence (10x the useful evaluations), but
    ``patience=2`` alone there also stopped 2 of 15 vmapped duals early, 7-11 above the full run's minimum;
    with ``reset_on_stall`` too, REPS's dual stops 5-20x sooner within float32 precision of it.

    Under ``vmap`` (seeds) the problems are solved one after another (``jax.custom_batching.sequential_vmap``):
    vmapped, every iteration waits for the longest line search among the seeds and the line search's
    branches all run, which cost 2.1x the sequential time on a 5-seed RWR policy fit of 50k samples here
    (benchmarks/README.md, "L-BFGS under vmap")."""
    traced = jax.make_jaxpr(fun)(x0)  # the data ``fun`` closes over (batched or not) becomes an argument
    converted = lambda x, consts: jax.core.eval_jaxpr(traced.jaxpr, consts, *jax.tree.leaves(x))[0]
    solve = jax.custom_batching.sequential_vmap(
        lambda x, consts: _lbfgs_loop(lambda y: converted(y, consts), x, iters, memory, patience, reset_on_stall))
    return solve(x0, list(traced.consts))


def _lbfgs_loop(fun, x0, iters: int, memory: int, patience: int | None, reset_on_stall: bool):
    """``lbfgs_minimize`` for one problem."""
    flat0, unravel = ravel_pytree(x0)
    f = lambda flat: fun(unravel(flat))
    opt = optax.lbfgs(memory_size=memory)
    value0, grad0 = jax.value_and_grad(f)(flat0)
    patience = iters if patience is None else patience

    def step(carry):
        i, fails, x, value, grad, state, best = carry
        updates, new_state = opt.update(grad, state, x, value=value, grad=grad, value_fn=f)
        new_x = x + updates
        new_value, new_grad = optax.tree.get(new_state, "value"), optax.tree.get(new_state, "grad")
        ok = jnp.isfinite(new_value) & jnp.all(jnp.isfinite(new_x)) & jnp.all(jnp.isfinite(new_grad))
        keep = lambda new, old: jnp.where(ok, new, old)
        fails = jnp.where(ok & (new_value < value), 0, fails + 1)
        state = jax.tree.map(keep, new_state, state)
        if reset_on_stall:
            fresh = opt.init(jnp.where(ok, new_x, x))
            state = jax.tree.map(lambda f, s: jnp.where(fails > 0, f, s), fresh, state)
        better = ok & (new_value < best[1])
        best = (jnp.where(better, new_x, best[0]), jnp.where(better, new_value, best[1]))
        return (i + 1, fails, keep(new_x, x), keep(new_value, value), keep(new_grad, grad), state, best)

    go = lambda carry: (carry[0] < iters) & (carry[1] < patience)
    carry = (jnp.int32(0), jnp.int32(0), flat0, value0, grad0, opt.init(flat0), (flat0, value0))
    *_, (flat, value) = jax.lax.while_loop(go, step, carry)
    return unravel(flat), value


def weighted_log_likelihood_loss(log_prob, params, weights):
    """``-mean_i w_i log pi(a_i | s_i)``: the loss of a weighted maximum-likelihood fit (reward-weighted
    regression, Peters & Schaal 2007, eq. 9; rllab's ERWR and REPS policy losses). ``log_prob(params)
    -> [B]``; ``weights [B]`` non-negative, held fixed."""
    return -jnp.mean(jax.lax.stop_gradient(weights) * log_prob(params))


def weighted_max_likelihood(log_prob, params, weights, iters: int):
    """The policy that maximises ``mean_i w_i log pi(a_i | s_i)``, by ``iters`` L-BFGS iterations from
    ``params``; returns ``(params, loss after)``."""
    return lbfgs_minimize(lambda p: weighted_log_likelihood_loss(log_prob, p, weights), params, iters)


def positive_advantages(advantages, center: bool = True):
    """rllab's ``center_advantages`` then ``shift_advantages_to_positive`` (``rllab/algos/util.py``), the
    weights of its episodic reward-weighted regression (``rllab/algos/erwr.py``): standardised
    ``(A - mean) / (std + 1e-8)``, then shifted by ``-min + 1e-8``."""
    if center:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    return advantages - advantages.min() + 1e-8
