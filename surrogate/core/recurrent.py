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
    def unroll(self, params, obs, carry0, resets):
        """``obs [T, N, d]``, ``carry0 [N, h]``, ``resets [T, N]`` -> ``(dist_params [T, N, ...],
        values [T, N], final_carry [N, h])``: ``step`` at every t, in a ``lax.scan``. The encoder
        runs on all ``T * N`` rows at once outside the scan; the heads stay inside it, where
        their products have ``step``'s shapes (batched, they differed from it by an ulp on CPU)."""
        features = self.apply(params, obs, method=self.encode)

        def body(carry, x):
            carry = self.apply(params, carry, *x, method=self.core)
            return carry, self.apply(params, carry, method=self.heads)

        final, (dist, values) = jax.lax.scan(body, carry0, (features, resets))
        return dist, values, final
