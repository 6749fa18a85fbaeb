import surrogate  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate.algos import ppo
from surrogate.algos import actor_critic as ac
from surrogate.runtime import jax_driver
from surrogate import envs
from surrogate.core.networks import mlp_params_np, orthogonal


@pytest.mark.parametrize("shape", [(64, 64), (4, 64), (64, 2), (8, 8, 4, 32)])
def test_orthogonal_init_is_scaled_orthogonal_and_deterministic(shape):
    init = jax.jit(orthogonal(np.sqrt(2)), static_argnums=1)
    w = np.asarray(init(jax.random.PRNGKey(3), shape)).reshape(-1, shape[-1])
    small = min(w.shape)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T  # the orthonormal side
    np.testing.assert_allclose(gram, 2.0 * np.eye(small), atol=1e-5)
    np.testing.assert_array_equal(w.reshape(shape), init(jax.random.PRNGKey(3), shape))
    assert not np.allclose(w.reshape(shape), init(jax.random.PRNGKey(4), shape))


def test_orthogonal_init_is_haar_distributed():
    """Over many keys the entries of a Haar-random orthogonal 3x3 matrix have mean 0 and variance 1/3,
    and det(Q) is +1 or -1 with equal probability (a sign fix missing from the QR would bias both)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    qs = np.asarray(jax.jit(jax.vmap(lambda k: orthogonal()(k, (3, 3))))(keys))
    assert np.abs(qs.mean(0)).max() < 0.03
    np.testing.assert_allclose(qs.var(0), 1 / 3, atol=0.03)
    assert abs(np.linalg.det(qs).mean()) < 0.06
    # with the sign fix the diagonal is not biased; plain Householder QR gives E[Q_11] = -0.5 here
    assert abs(qs[:, 0, 0].mean()) < 0.03


def test_orthogonal_init_under_eval_shape_and_typed_keys():
    out = jax.eval_shape(lambda k: orthogonal()(k, (5, 7)), jax.random.PRNGKey(0))
    assert out.shape == (5, 7) and out.dtype == jnp.float32
    w = orthogonal()(jax.random.key(1), (6, 4))
    np.testing.assert_allclose(np.asarray(w).T @ np.asarray(w), np.eye(4), atol=1e-5)


def test_seed_initialiser_has_no_lapack_call():
    """Batched LAPACK QR deadlocks intermittently in jaxlib 0.10.2 on CPU (see networks.orthogonal): the
    Nature CNN's jitted initialiser (MLPs are drawn on the host) must not contain one."""
    from surrogate.core.networks import ActorCritic

    net = ActorCritic(6, True, "nature_cnn")
    init = jax.jit(jax.vmap(lambda k: net.init(k, jnp.zeros((1, 84, 84, 4), jnp.uint8))))
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
    assert ac.pick_network(cfg, (84, 84, 4)) == "nature_cnn"
    assert ac.pick_network(cfg, (10, 10, 4)) == "minatar_cnn"  # too small for the Nature CNN's strides
    assert ac.pick_network(cfg, (4,)) == "mlp"


def test_minatar_cnn_is_young_and_tian_torso():
    """One 3x3 conv, 16 channels, no padding (10x10 -> 8x8), then 128 units: MinAtar's DQN/AC network."""
    from surrogate.core.networks import ActorCritic

    net = ActorCritic(3, True, "minatar_cnn")
    obs = jnp.zeros((2, 10, 10, 4), jnp.float32)
    params = net.init(jax.random.PRNGKey(0), obs)
    logits, value = net.apply(params, obs)
    assert logits.shape == (2, 3) and value.shape == (2,)
    torso = params["params"]["torso"]
    assert torso["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert torso["Dense_0"]["kernel"].shape == (8 * 8 * 16, 128)
    # its im2col convolution computes what nn.Conv computes with the same parameters
    import flax.linen as nn
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 10, 10, 4))
    ref = nn.Conv(16, (3, 3), padding="VALID").apply({"params": torso["Conv_0"]}, x)
    from surrogate.core.networks import Im2colConv
    np.testing.assert_allclose(Im2colConv(16).apply({"params": torso["Conv_0"]}, x), ref, atol=1e-5)


@pytest.mark.parametrize("discrete,hidden,obs_shape", [(True, (64, 64), (4,)), (False, (16, 8, 8), (3,)),
                                                        (True, (32,), (10, 10, 4))])
def test_numpy_mlp_init_matches_flax_init(discrete, hidden, obs_shape):
    """The host-drawn parameters have the structure, shapes and dtypes of ``network.init`` and each kernel
    the same gain (all singular values equal, as for an orthogonal matrix times the module's gain)."""
    from surrogate.core.networks import ActorCritic, mlp_params_np

    net = ActorCritic(3, discrete, "mlp", hidden, "tanh", -0.7, obs_ndim=len(obs_shape))
    flax_params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, *obs_shape)))
    ours = mlp_params_np(net, np.random.default_rng(0), obs_shape)
    assert jax.tree.structure(ours) == jax.tree.structure(flax_params)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(ours), jax.tree.leaves(flax_params)):
        assert a.shape == b.shape and a.dtype == b.dtype, path
        if path[-1].key == "kernel":
            sa, sb = np.linalg.svd(a, compute_uv=False), np.linalg.svd(np.asarray(b), compute_uv=False)
            np.testing.assert_allclose(sa, sb, rtol=1e-4)
        else:
            np.testing.assert_array_equal(a, b)  # zero biases, log_std_init
    other = mlp_params_np(net, np.random.default_rng(1), obs_shape)
    assert not np.allclose(other["params"]["actor"]["Dense_0"]["kernel"], ours["params"]["actor"]["Dense_0"]["kernel"])


def test_runs_start_from_host_drawn_parameters_and_resume_structure():
    """A JAX-env run's initialiser takes the NumPy draws (seed by seed, reproducible), and the state
    template used to restore checkpoints (Flax's init under eval_shape) has the same structure."""
    cfg = ppo.Config()
    env = envs.make("CartPole-v1")
    learner = ppo.make_learner(cfg, env)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    runner = jax_driver.initial_state(ppo.ALGO, cfg, env, keys)
    want = [mlp_params_np(learner.network, ac.key_rng(k, 1), env.obs_shape) for k in keys]
    for i in range(2):
        for a, b in zip(jax.tree.leaves(runner.algo.params), jax.tree.leaves(want[i])):
            np.testing.assert_array_equal(a[i], b)
    template = ppo.ALGO.state_template(cfg, env, jax.random.PRNGKey(0), 2)
    assert jax.tree.structure(template) == jax.tree.structure(runner)
    assert [x.shape for x in jax.tree.leaves(template)] == [x.shape for x in jax.tree.leaves(runner)]
