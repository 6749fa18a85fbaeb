"""L-BFGS inside ``jit``, and the weighted maximum-likelihood policy fit that RWR and REPS make with it.

rllab runs ``scipy.optimize.fmin_l_bfgs_b(maxiter=n)`` on the host (``rllab/optimizers/lbfgs_optimizer.py``,
``rllab/algos/reps.py``); here the same number of iterations of ``optax.lbfgs`` (memory 10, as scipy's
default, with optax's zoom line search) run in a ``lax.scan``, so the whole update stays one program.
"""
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree


def lbfgs_minimize(fun, x0, iters: int, memory: int = 10):
    """``iters`` L-BFGS iterations on ``fun(x) -> scalar`` from the pytree ``x0`` (Nocedal & Wright 1999,
    algorithm 7.5); returns ``(x, fun(x))``. An iteration whose step makes ``fun`` or its gradient
    non-finite is not taken (the point stays where it was)."""
    flat0, unravel = ravel_pytree(x0)
    f = lambda flat: fun(unravel(flat))
    opt = optax.lbfgs(memory_size=memory)
    value_and_grad = optax.value_and_grad_from_state(f)

    def step(carry, _):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, new_state = opt.update(grad, state, x, value=value, grad=grad, value_fn=f)
        new_x = x + updates
        ok = jnp.isfinite(optax.tree.get(new_state, "value")) & jnp.all(jnp.isfinite(new_x))
        keep = lambda new, old: jnp.where(ok, new, old)
        return (keep(new_x, x), jax.tree.map(keep, new_state, state)), None

    (flat, _), _ = jax.lax.scan(step, (flat0, opt.init(flat0)), None, length=iters)
    return unravel(flat), f(flat)


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
