import surrogate  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate.algos import ppo
from surrogate.core import onpolicy
from surrogate import envs
from surrogate.core.networks import gram_schmidt, orthogonal


@pytest.mark.parametrize("shape", [(64, 64), (4, 64), (64, 2), (8, 8, 4, 32)])
def test_orthogonal_init_equals_jax_orthogonal(shape):
    key = jax.random.PRNGKey(3)
    ours = orthogonal(np.sqrt(2))(key, shape)
    ref = jax.nn.initializers.orthogonal(np.sqrt(2))(key, shape)
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_gram_schmidt_gives_orthonormal_q_and_upper_triangular_r():
    a = jax.random.normal(jax.random.PRNGKey(0), (50, 20))
    q = gram_schmidt(a)
    np.testing.assert_allclose(q.T @ q, np.eye(20), atol=1e-5)
    r = q.T @ a
    np.testing.assert_allclose(np.tril(r, -1), 0.0, atol=1e-4)
    assert np.all(np.diag(r) > 0)


def test_seed_initialiser_has_no_lapack_call():
    """Batched LAPACK QR deadlocks intermittently in jaxlib 0.10.2 on CPU (see gram_schmidt)."""
    cfg = ppo.Config()
    env = envs.make("CartPole-v1")
    init = onpolicy.jax_init(ppo.ALGO, cfg, ppo.make_learner(cfg, env), env, 4)
    hlo = init.lower(jax.random.split(jax.random.PRNGKey(0), 4)).as_text()
    assert "geqrf" not in hlo and "lapack" not in hlo.lower()


def test_nature_cnn_actor_critic_shapes_and_pick_network():
    from surrogate.core.networks import ActorCritic

    net = ActorCritic(6, True, "nature_cnn")
    obs = jnp.zeros((2, 84, 84, 4), jnp.uint8)
    params = net.init(jax.random.PRNGKey(0), obs)
    logits, value = net.apply(params, obs)
    assert logits.shape == (2, 6) and value.shape == (2,)
    cfg = ppo.Config()
    assert onpolicy.pick_network(cfg, (84, 84, 4)) == "nature_cnn"
    assert onpolicy.pick_network(cfg, (10, 10, 4)) == "mlp"  # MinAtar: too small for the Nature CNN's strides
