"""Recurrent actor-critic for recurrent PPO: MLP encoder -> GRU core -> policy and value heads.

The core is a gated recurrent unit (Cho et al. 2014, eqs. 5-8; ``flax.linen.GRUCell``), the
gated successor of the LSTM (Hochreiter & Schmidhuber 1997): with ``x_t`` the encoded
observation, ``r = s(W_r x + U_r h)``, ``z = s(W_z x + U_z h)``, ``n = tanh(W_n x + r * (U_n h + b))``,
``h' = (1 - z) n + z h``. The policy and value heads read ``h'``; actor and critic share it.

Episode starts follow sb3-contrib's ``RecurrentPPO`` (used by rl-zoo3's ``ppo_lstm``): a
boolean ``reset`` marks the first step of a new episode, and the carry is zeroed where it is
true *before* the step uses it, so no memory crosses an episode boundary (and no gradient
either). A training minibatch is whole env sequences ``[T, N]`` replayed by ``unroll`` from the
carry stored at the rollout's start, with the rollout's episode starts as ``resets``.

Initialisation as in ``core/networks.py``: orthogonal kernels, gain sqrt(2) in the encoder,
0.01 on the policy head, 1.0 on the value head; the GRU's input and recurrent kernels are
orthogonal with gain 1 (``networks.orthogonal``: jax's own deadlocks under ``vmap`` on CPU).
"""
from functools import partial
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from surrogate.core.networks import MLP, POLICY_GAIN, VALUE_GAIN, dense, orthogonal


class RecurrentActorCritic(nn.Module):
    """``dist_params``: ``logits [..., A]`` if ``discrete`` else ``(mean, log_std)``, both ``[..., A]``
    (what ``distributions.make_dist`` takes); ``value [...]``; the carry is ``[N, gru_size]``.

    Pure interface (parameters passed in): ``init_params``, ``initial_carry``, ``step``, ``unroll``."""

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (64,)
    gru_size: int = 64
    activation: str = "tanh"
    log_std_init: float = 0.0

    def setup(self):
        self.encoder = MLP(tuple(self.hidden), self.activation)
        self.gru = nn.GRUCell(self.gru_size, kernel_init=orthogonal(1.0), recurrent_kernel_init=orthogonal(1.0))
        self.pi_head = dense(self.action_dim, POLICY_GAIN)
        self.v_head = dense(1, VALUE_GAIN)
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,))

    def encode(self, obs):
        return self.encoder(obs)

    def core(self, carry, features, reset):
        """One GRU step from ``carry`` zeroed where ``reset`` (episode starts)."""
        carry = jnp.where(reset[..., None], jnp.zeros_like(carry), carry)
        return self.gru(carry, features)[0]

    def heads(self, h):
        out = self.pi_head(h)
        dist = out if self.discrete else (out, jnp.broadcast_to(self.log_std, out.shape))
        return dist, self.v_head(h)[..., 0]

    def __call__(self, obs, carry, reset):
        carry = self.core(carry, self.encode(obs), reset)
        return (*self.heads(carry), carry)

    # ------------------------------------------------------------------ pure functions of params
    @nn.nowrap
    def initial_carry(self, batch_size: int):
        return jnp.zeros((batch_size, self.gru_size), jnp.float32)

    @nn.nowrap
    def init_params(self, key, obs_shape):
        """Parameters for observations of shape ``obs_shape`` (one sample's)."""
        return self.init(key, jnp.zeros((1, *obs_shape), jnp.float32), self.initial_carry(1), jnp.zeros(1, bool))

    @nn.nowrap
    def step(self, params, obs, carry, reset):
        """``obs [N, d]``, ``carry [N, h]``, ``reset [N]`` bool -> ``(dist_params, value [N], new_carry)``."""
        return self.apply(params, obs, carry, reset)

    @nn.nowrap
    def unroll(self, params, obs, carry0, resets, all_carries: bool = False):
        """``obs [T, N, d]``, ``carry0 [N, h]``, ``resets [T, N]`` -> ``(dist_params [T, N, ...],
        values [T, N], final_carry [N, h])``: ``step`` at every t (bit for bit: a test checks). The
        encoder and the GRU's input products run on all ``T * N`` rows at once; the recurrence and
        the heads, whose products have ``step``'s shapes there (batched, the value head's differed
        from ``step``'s by an ulp on CPU), in a loop (``gru_sequence``).
        ``all_carries``: the third value is the carry after every step, ``[T, N, h]``, instead."""
        features = self.apply(params, obs, method=self.encode)
        heads = lambda p, h: self.apply(p, h, method=self.heads)
        carries, (dist, values) = gru_sequence(params["params"]["gru"], features, carry0, resets, heads, params)
        return dist, values, carries if all_carries else carries[-1]


def gru_sequence(gru, features, carry0, resets, readout, readout_params):
    """``flax.linen.GRUCell`` (parameters ``gru``) run over ``features [T, N, f]`` from ``carry0 [N, h]``,
    the carry zeroed before step t where ``resets[t]``; returns the carries ``[T, N, h]`` and
    ``readout(readout_params, carry)`` of each step's carry (stacked on a leading T axis).

    The cell's own operations in its order (so the same numbers), arranged for speed on CPU: the
    input products ``W_i x + b_i`` of all steps at once, three ``[N, h] x [h, h]`` products per step
    in the loop, and a hand-written backward pass (``_recurrence_bwd``, checked against autodiff by a
    test): autodiff of the cell inside a ``scan`` took ~2x as long here (T 32, N 8, h 64), its many
    small per-step operations costing more in overhead than in arithmetic."""
    dense = lambda name: features @ gru[name]["kernel"] + gru[name]["bias"]
    w_h = tuple(gru[name]["kernel"] for name in ("hr", "hz", "hn"))
    return _recurrence(readout, w_h, gru["hn"]["bias"], (dense("ir"), dense("iz"), dense("in")), carry0, resets,
                       readout_params)


def _gates(w_h, b_hn, x, h):
    """GRUCell's gates (Cho et al. 2014) from input products ``x = (x_r, x_z, x_n)`` and carry ``h``."""
    r = jax.nn.sigmoid(x[0] + h @ w_h[0])
    z = jax.nn.sigmoid(x[1] + h @ w_h[1])
    hn = h @ w_h[2] + b_hn
    n = jnp.tanh(x[2] + r * hn)
    return r, z, hn, n


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _recurrence(readout, w_h, b_hn, x, carry0, resets, readout_params):
    def body(h, inputs):
        *x_t, reset = inputs
        h = jnp.where(reset[..., None], jnp.zeros_like(h), h)
        _, z, _, n = _gates(w_h, b_hn, x_t, h)
        h = (1.0 - z) * n + z * h
        return h, (h, readout(readout_params, h))

    return jax.lax.scan(body, carry0, (*x, resets))[1]


def _recurrence_fwd(readout, w_h, b_hn, x, carry0, resets, readout_params):
    out = _recurrence(readout, w_h, b_hn, x, carry0, resets, readout_params)
    return out, (w_h, b_hn, x, carry0, resets, readout_params, out[0])


def _recurrence_bwd(readout, residuals, d_out):
    """Backpropagation through time. With ``h' = (1 - z) n + z h``, every derivative of ``h'`` with
    respect to a gate's pre-activation is ``dh' * c`` for a coefficient ``c`` that the forward values
    give, so they are computed for all steps at once and the loop carries only ``dL/dh``:
    ``dL/dh_{t-1} = (dh z + sum_g (dh c_g) W_g^T) * (1 - reset_t)``. The weight gradients, and the
    readout's (by autodiff), are then products over all ``T * N`` rows."""
    w_h, b_hn, x, carry0, resets, readout_params, carries = residuals
    _, readout_vjp = jax.vjp(jax.vmap(readout, in_axes=(None, 0)), readout_params, carries)
    d_readout_params, d_carries = readout_vjp(d_out[1])
    keep = 1.0 - resets[..., None].astype(carries.dtype)
    h_prev = jnp.concatenate([carry0[None], carries[:-1]]) * keep  # the carry each step used
    r, z, hn, n = _gates(w_h, b_hn, x, h_prev)
    c_n = (1.0 - z) * (1.0 - n * n)  # d h' / d (x_n + r * hn)
    c = (c_n * hn * r * (1.0 - r), (h_prev - n) * z * (1.0 - z), c_n * r)  # ... / d (h W_r), (h W_z), (h W_n)
    w_t = jnp.concatenate([w.T for w in w_h])  # [3h, h]: one product per step for the three gates

    def body(d_next, inputs):
        d_h, z_t, keep_t, c_t = inputs
        dh = d_h + d_next
        d_prev = dh * z_t + (jnp.tile(dh, 3) * c_t) @ w_t
        return d_prev * keep_t, dh

    d_carry0, dh = jax.lax.scan(body, jnp.zeros_like(carry0), (d_out[0] + d_carries, z, keep, jnp.concatenate(c, -1)),
                                reverse=True)
    flat = lambda a: a.reshape(-1, a.shape[-1])
    d_pre = tuple(dh * c_g for c_g in c)  # d L / d (h W_g) for r, z, n
    d_w = tuple(flat(h_prev).T @ flat(d) for d in d_pre)
    return d_w, flat(d_pre[2]).sum(0), (d_pre[0], d_pre[1], dh * c_n), d_carry0, None, d_readout_params


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)
