"""Reptile (serial and batched), first-order MAML and MAML: each a meta-gradient of the initial parameters
phi computed from a meta-batch of tasks (vmapped), then one step of an optax outer optimiser.

* Reptile (Nichol, Achiam & Schulman 2018, Algorithms 1 and 2): phi <- phi + eps * mean_i(W_i - phi), with
  W_i = U_tau_i^k(phi) the parameters after k inner steps on task i. Written as the "gradient"
  g = phi - mean_i W_i under SGD with learning rate eps, annealed linearly to 0 over training (the paper's
  appendix). Serial Reptile (Algorithm 1) applies that update after every task of the meta-batch in turn.
* MAML (Finn, Abbeel & Levine 2017, Eq. 1; Nichol et al. Eq. 4): g = mean_i d/dphi L_query_i(U_i(phi)),
  ``jax.grad`` through the inner loop's ``lax.scan``: g_MAML = U'(phi)^T grad L_query(U(phi)), with the
  Jacobian U'(phi) = prod_j (I - alpha H_j) for SGD steps.
* First-order MAML (Nichol et al. Eq. 5): the Jacobian U'(phi) is replaced by the identity,
  g_FOMAML = mean_i grad L_query_i(U_i(phi)).
* Pre-training (the paper's "joint training" baseline of Figure 1): g = mean_i grad L_i(phi), no adaptation.

Every task carries ``(x_support, y_support, x_query, y_query)``; Reptile and pre-training use only the
support set (Reptile's inner loop sees all of a task's training samples).
"""
from typing import Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from surrogate.meta.inner import adapt

Algo = Literal["reptile", "fomaml", "maml", "pretrain"]


class Inner(NamedTuple):
    """The inner loop's settings (static under ``jit``)."""
    steps: int
    batch_size: int
    optimizer: optax.GradientTransformation


def _mean(tree):
    return jax.tree.map(lambda x: jnp.mean(x, axis=0), tree)


def reptile_direction(loss_fn: Callable, params, tasks, keys, inner: Inner):
    """``(phi - mean_i W_i, metrics)``: Reptile's update direction; SGD with step eps on it gives Algorithm 2."""
    xs, ys = tasks[0], tasks[1]
    w, losses = jax.vmap(lambda x, y, k: adapt(loss_fn, params, x, y, k, steps=inner.steps, batch_size=inner.batch_size,
                                               optimizer=inner.optimizer, return_losses=True))(xs, ys, keys)
    g = jax.tree.map(lambda p, wi: p - jnp.mean(wi, axis=0), params, w)
    return g, {"loss_before": jnp.mean(losses[:, 0]), "loss_after": jnp.mean(losses[:, -1])}


def _query_loss(loss_fn, inner: Inner, params, task, key):
    xs, ys, xq, yq = task
    adapted, losses = adapt(loss_fn, params, xs, ys, key, steps=inner.steps, batch_size=inner.batch_size,
                            optimizer=inner.optimizer, return_losses=True)
    return loss_fn(adapted, xq, yq), (adapted, losses[0])


def maml_grad(loss_fn: Callable, params, tasks, keys, inner: Inner):
    """``(g_MAML, metrics)``: the exact meta-gradient, second-order terms included (``jax.grad`` through ``adapt``)."""
    grad = jax.value_and_grad(lambda p, t, k: _query_loss(loss_fn, inner, p, t, k), has_aux=True)
    (after, (_, before)), g = jax.vmap(grad, in_axes=(None, 0, 0))(params, tasks, keys)
    return _mean(g), {"loss_before": jnp.mean(before), "loss_after": jnp.mean(after)}


def fomaml_grad(loss_fn: Callable, params, tasks, keys, inner: Inner):
    """``(g_FOMAML, metrics)``: the query-loss gradient at the adapted parameters (MAML without U'(phi))."""

    def one(task, key):
        _, (adapted, before) = _query_loss(loss_fn, inner, jax.lax.stop_gradient(params), task, key)
        query_loss, g = jax.value_and_grad(loss_fn)(adapted, task[2], task[3])
        return g, query_loss, before

    g, after, before = jax.vmap(one)(tasks, keys)
    return _mean(g), {"loss_before": jnp.mean(before), "loss_after": jnp.mean(after)}


def pretrain_grad(loss_fn: Callable, params, tasks, keys, inner: Inner):
    """``(g, metrics)``: the gradient of the mean support loss at phi itself (joint training, no adaptation)."""
    losses, g = jax.vmap(jax.value_and_grad(loss_fn), in_axes=(None, 0, 0))(params, tasks[0], tasks[1])
    return _mean(g), {"loss_before": jnp.mean(losses), "loss_after": jnp.mean(losses)}


META_GRADS = {"reptile": reptile_direction, "fomaml": fomaml_grad, "maml": maml_grad, "pretrain": pretrain_grad}


def outer_optimizer(kind: Literal["sgd", "adam"], lr: float, total_updates: int, anneal: bool):
    """The outer optimiser: SGD (Reptile's eps) or Adam (MAML's meta-optimiser), its step annealed linearly
    from ``lr`` to 0 over ``total_updates`` when ``anneal`` (the paper anneals Reptile's outer step so)."""
    schedule = optax.linear_schedule(lr, 0.0, total_updates) if anneal else lr
    return optax.sgd(schedule) if kind == "sgd" else optax.adam(schedule)


def meta_step(algo: Algo, loss_fn: Callable, inner: Inner, optimizer, params, opt_state, tasks, key,
              serial: bool = False):
    """One meta-iteration on a meta-batch ``tasks`` (leading axis T): ``(params, opt_state, metrics)``.

    ``serial`` (Reptile only) is Algorithm 1 run over the meta-batch: one outer update per task, in turn."""
    keys = jax.random.split(key, tasks[0].shape[0])
    if serial:
        if algo != "reptile":
            raise ValueError("serial updates are Reptile's Algorithm 1 only")

        def one(carry, tk):
            p, s = carry
            task, k = tk
            g, m = reptile_direction(loss_fn, p, jax.tree.map(lambda x: x[None], task), k[None], inner)
            updates, s = optimizer.update(g, s, p)
            return (optax.apply_updates(p, updates), s), m

        (params, opt_state), metrics = jax.lax.scan(one, (params, opt_state), (tasks, keys))
        return params, opt_state, _mean(metrics)
    g, metrics = META_GRADS[algo](loss_fn, params, tasks, keys, inner)
    updates, opt_state = optimizer.update(g, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, metrics
