"""The one inner loop shared by Reptile, FOMAML and MAML: ``steps`` optimiser steps on minibatches of one
task's training set, written as a ``lax.scan`` so that ``jax.grad`` can differentiate through it (MAML).

Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms", Algorithm 2: the task's
``k`` inner steps are SGD or Adam with beta1 = 0 on minibatches drawn epoch by epoch from the task's
training samples (the authors' ``_mini_batches``: shuffle, walk through, reshuffle when exhausted).
Finn et al. 2017 (MAML) take full-batch SGD steps: ``batch_size >= n`` gives exactly that.
"""
from typing import Callable, Literal

import jax
import jax.numpy as jnp
import optax

LossFn = Callable  # (params, x [B, ...], y [B, ...]) -> scalar loss


def inner_optimizer(kind: Literal["sgd", "adam"], lr: float) -> optax.GradientTransformation:
    """SGD, or Adam with beta1 = 0 as in the paper's appendix (Adam's moments start fresh for every task).
    ``eps_root`` keeps the square root differentiable where a gradient is exactly 0 (MAML through Adam)."""
    if kind == "sgd":
        return optax.sgd(lr)
    if kind == "adam":
        return optax.adam(lr, b1=0.0, b2=0.999, eps=1e-8, eps_root=1e-16)
    raise ValueError(f"unknown inner optimiser {kind!r}")


def minibatch_indices(key, n: int, batch_size: int, steps: int) -> jnp.ndarray:
    """``[steps, batch_size]`` sample indices: epochs of fresh permutations of ``range(n)`` laid end to end,
    so every sample is used once per epoch. ``batch_size >= n`` is full-batch: every step sees every sample
    once (the authors' code would repeat samples inside such a batch; the mean gradient is the same when
    ``batch_size`` is a multiple of ``n``)."""
    if batch_size >= n:
        return jnp.broadcast_to(jnp.arange(n), (steps, n))
    epochs = -(-steps * batch_size // n)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, epochs))
    return perms.reshape(-1)[: steps * batch_size].reshape(steps, batch_size)


def adapt(loss_fn: LossFn, params, x, y, key, *, steps: int, batch_size: int, optimizer: optax.GradientTransformation,
          return_losses: bool = False):
    """``steps`` optimiser steps of ``loss_fn`` from ``params`` on minibatches of ``(x, y)``: the adapted
    parameters U_tau^k(phi) (paper, Section 3), and the loss before each step when ``return_losses``.

    Differentiable end to end: ``jax.grad`` of a function of the result w.r.t. ``params`` is MAML's
    meta-gradient (Finn et al. 2017, Eq. 1), with every second-order term."""
    idx = minibatch_indices(key, x.shape[0], batch_size, steps)

    def step(carry, i):
        p, opt_state = carry
        loss, g = jax.value_and_grad(loss_fn)(p, x[i], y[i])
        updates, opt_state = optimizer.update(g, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), idx)
    return (params, losses) if return_losses else params
