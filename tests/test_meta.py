"""Reptile, FOMAML and MAML: Reptile's update against its closed form on quadratic tasks, FOMAML and MAML
against the Hessian formula, MAML's meta-gradient against finite differences, transduction, the inner
loop's minibatches, errors on bad input, learning on sine waves, and the run directory with resume."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from surrogate import cli
from tb_events import tensorboard_scalars
from surrogate.errors import ConfigError
from surrogate.meta import convnet, default_config, make_trainer, sine, train_in_dir
from surrogate.meta.inner import adapt, inner_optimizer, minibatch_indices
from surrogate.meta.learners import Inner, fomaml_grad, maml_grad, meta_step, outer_optimizer


def test_minibatches_walk_through_epochs():
    idx = np.asarray(minibatch_indices(jax.random.PRNGKey(0), 6, 4, 6))  # 24 indices = 4 epochs of 6
    assert idx.shape == (6, 4)
    for epoch in idx.reshape(4, 6):
        assert sorted(epoch) == list(range(6))
    full = np.asarray(minibatch_indices(jax.random.PRNGKey(0), 5, 10, 3))  # batch >= n: full batch
    assert (full == np.arange(5)).all()


# ----------------------------------------------------------------------------- Reptile's closed form


def quadratic_loss(params, x, y):
    """Task tau: L(w) = 1/2 sum_d a_d (w_d - c_d)^2, with every row of x equal to c and of y to a (so any
    minibatch gives the same loss)."""
    return 0.5 * jnp.mean(jnp.sum(y * (params["w"] - x) ** 2, axis=-1))


def quadratic_tasks(key, num_tasks=3, n=6, d=4):
    kc, ka = jax.random.split(key)
    c = jax.random.normal(kc, (num_tasks, 1, d))
    a = jax.random.uniform(ka, (num_tasks, 1, d), minval=0.5, maxval=2.0)
    xs, ys = jnp.broadcast_to(c, (num_tasks, n, d)), jnp.broadcast_to(a, (num_tasks, n, d))
    return (xs, ys, xs, ys), c[:, 0], a[:, 0]


@pytest.mark.parametrize("serial", [False, True])
def test_reptile_update_equals_closed_form(serial):
    """k SGD steps of lr alpha on task tau give W = c + (1 - alpha a)^k (phi - c); Reptile moves phi by
    eps_t * mean_tau (W_tau - phi) (batched), or by eps_t (W_tau - phi) after each task (serial), with eps_t
    annealed linearly to 0."""
    alpha, k, eps, total = 0.1, 5, 0.7, 4
    tasks, c, a = quadratic_tasks(jax.random.PRNGKey(1))
    inner = Inner(k, 2, inner_optimizer("sgd", alpha))  # minibatches of 2 rows: same gradient as full batch
    updates = total * (3 if serial else 1)
    opt = outer_optimizer("sgd", eps, updates, anneal=True)
    params = {"w": jnp.array([0.3, -1.0, 2.0, 0.5])}
    state, expected, t = opt.init(params), np.asarray(params["w"], np.float64), 0
    step = jax.jit(lambda p, s, key: meta_step("reptile", quadratic_loss, inner, opt, p, s, tasks, key, serial))
    for it in range(2):
        params, state, _ = step(params, state, jax.random.PRNGKey(it))
        w = lambda phi: c + (1 - alpha * a) ** k * (phi - c)  # noqa: E731
        if serial:
            for i in range(3):
                expected = expected + eps * (1 - t / updates) * (np.asarray(w(expected))[i] - expected)
                t += 1
        else:
            expected = expected + eps * (1 - t / updates) * np.mean(np.asarray(w(expected)) - expected, axis=0)
            t += 1
        np.testing.assert_allclose(params["w"], expected, rtol=1e-5, atol=1e-6)


def test_reptile_outer_step_anneals_to_zero():
    tasks, _, _ = quadratic_tasks(jax.random.PRNGKey(2))
    inner = Inner(3, 6, inner_optimizer("sgd", 0.1))
    opt = outer_optimizer("sgd", 1.0, 2, anneal=True)
    params = {"w": jnp.zeros(4)}
    state = opt.init(params)
    for i in range(2):
        params, state, _ = meta_step("reptile", quadratic_loss, inner, opt, params, state, tasks, jax.random.PRNGKey(i))
    after_two = params["w"]
    params, state, _ = meta_step("reptile", quadratic_loss, inner, opt, params, state, tasks, jax.random.PRNGKey(3))
    np.testing.assert_array_equal(params["w"], after_two)  # eps reached 0 after total_updates


# ----------------------------------------------------------------------------- MAML and FOMAML


@pytest.fixture(scope="module")
def sine_setup():
    """A 1-8-1 tanh MLP and two sine tasks (4 support, 5 query points)."""
    params = sine.init(jax.random.PRNGKey(0), hidden=(8,))
    tasks = sine.sample_tasks(jax.random.PRNGKey(1), 2, 4, 5)
    return params, tasks


def test_fomaml_is_maml_without_the_second_order_term(sine_setup):
    """Two full-batch SGD steps phi1 = phi0 - alpha g(phi0), phi2 = phi1 - alpha g(phi1): MAML's gradient is
    (I - alpha H(phi0)) (I - alpha H(phi1)) grad L_q(phi2) with H = jax.hessian of the support loss;
    FOMAML's is grad L_q(phi2) (the product replaced by I)."""
    params, tasks = sine_setup
    alpha = 0.05
    inner = Inner(2, 4, inner_optimizer("sgd", alpha))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    flat, unravel = ravel_pytree(params)
    grads = jax.jit(lambda p: [ravel_pytree(f(sine.loss_fn, p, tasks, keys, inner)[0])[0] for f in (maml_grad, fomaml_grad)])
    maml, fomaml = grads(params)

    @jax.jit
    def expected(xs, ys, xq, yq):
        support = lambda f: sine.loss_fn(unravel(f), xs, ys)  # noqa: E731
        phi0 = flat
        phi1 = phi0 - alpha * jax.grad(support)(phi0)
        phi2 = phi1 - alpha * jax.grad(support)(phi1)
        gq = jax.grad(lambda f: sine.loss_fn(unravel(f), xq, yq))(phi2)
        eye = jnp.eye(flat.size)
        return (eye - alpha * jax.hessian(support)(phi0)) @ ((eye - alpha * jax.hessian(support)(phi1)) @ gq), gq

    expect_maml, expect_fo = jax.tree.map(lambda x: jnp.mean(x, 0), jax.vmap(expected)(*tasks))
    np.testing.assert_allclose(fomaml, expect_fo, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(maml, expect_maml, rtol=1e-3, atol=1e-5)
    assert np.linalg.norm(maml - fomaml) > 0.05 * np.linalg.norm(maml)  # the second-order term is not negligible


@pytest.mark.parametrize("kind", ["adam", pytest.param("sgd", marks=pytest.mark.slow)])
def test_maml_gradient_matches_finite_differences(sine_setup, kind):
    """d/dphi of the query loss after 3 inner steps on minibatches of 2 (fixed key), against central
    differences along random directions, in float64."""
    with jax.enable_x64(True):
        params, tasks = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), sine_setup)
        inner = Inner(3, 2, inner_optimizer(kind, 0.05))
        keys = jax.random.split(jax.random.PRNGKey(3), 2)
        flat, unravel = ravel_pytree(params)

        @jax.jit
        def meta_loss(f):
            p = unravel(f)
            return jnp.mean(jnp.stack([sine.loss_fn(adapt(sine.loss_fn, p, tasks[0][i], tasks[1][i], keys[i], steps=3,
                                                        batch_size=2, optimizer=inner.optimizer), tasks[2][i],
                                                  tasks[3][i]) for i in range(2)]))

        g = ravel_pytree(jax.jit(maml_grad, static_argnums=(0, 4))(sine.loss_fn, params, tasks, keys, inner)[0])[0]
        for d in range(3):
            v = jax.random.normal(jax.random.PRNGKey(10 + d), flat.shape, jnp.float64)
            h = 1e-5
            fd = (meta_loss(flat + h * v) - meta_loss(flat - h * v)) / (2 * h)
            np.testing.assert_allclose(float(g @ v), float(fd), rtol=1e-5)


# ----------------------------------------------------------------------------- conv net and transduction


@pytest.fixture(scope="module")
def small_net():
    init, loss_fn, apply = convnet.make(3, filters=4)
    params = init(jax.random.PRNGKey(0), (28, 28, 1))
    return params, loss_fn, jax.jit(apply)


def test_convnet_shapes_and_parameters(small_net):
    params, _, apply = small_net
    assert apply(params, jnp.zeros((7, 28, 28, 1))).shape == (7, 3)
    init, _, apply84 = convnet.make(5)
    p84 = init(jax.random.PRNGKey(0), (84, 84, 3))
    assert apply84(p84, jnp.zeros((2, 84, 84, 3))).shape == (2, 5)
    conv = [k for k in p84["params"] if k.startswith("Conv")]
    assert len(conv) == 4 and p84["params"]["Conv_0"]["kernel"].shape == (3, 3, 3, 64)
    assert p84["params"]["Dense_0"]["kernel"].shape == (6 * 6 * 64, 5)  # 84 -> 42 -> 21 -> 11 -> 6


def test_im2col_conv_equals_flax_conv_in_values_gradients_and_initial_parameters():
    import flax.linen as nn

    from surrogate.core.networks import Im2colConv

    x = jax.random.normal(jax.random.PRNGKey(1), (3, 7, 6, 2))  # odd, non-square: the padding's edges
    ours, flax_conv = Im2colConv(5, padding="SAME"), nn.Conv(5, (3, 3), padding="SAME")
    params = flax_conv.init(jax.random.PRNGKey(2), x)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), ours.init(jax.random.PRNGKey(2), x), params))
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
    np.testing.assert_allclose(ours.apply(params, x), flax_conv.apply(params, x), atol=1e-5)
    grad = lambda net: jax.grad(lambda p, x: jnp.sum(jnp.sin(net.apply(p, x))), argnums=(0, 1))(params, x)  # noqa: E731
    for a, b in zip(jax.tree.leaves(grad(ours)), jax.tree.leaves(grad(flax_conv))):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_non_transductive_predictions_ignore_other_query_samples(small_net):
    params, _, apply = small_net
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(5), 3)
    xs, xq = jax.random.uniform(k1, (6, 28, 28, 1)), jax.random.uniform(k2, (4, 28, 28, 1))
    xq2 = xq.at[1:].set(jax.random.uniform(k3, (3, 28, 28, 1)) * 3)  # other query samples changed
    one = lambda q: convnet.predict_non_transductive(apply, params, xs, q)  # noqa: E731
    assert one(xq)[0] == one(xq2)[0]
    expected = [int(jnp.argmax(apply(params, jnp.concatenate([xs, xq[i:i + 1]]))[-1])) for i in range(4)]
    assert list(np.asarray(one(xq))) == expected
    # transduction: the batch's statistics pass information between query samples
    assert not np.allclose(apply(params, xq)[0], apply(params, xq2)[0], atol=1e-4)


# ----------------------------------------------------------------------------- errors


def test_config_errors():
    with pytest.raises(ConfigError, match="Unknown --data"):
        default_config("reptile", "cifar")
    with pytest.raises(ConfigError, match="Unknown --data"):
        default_config("reptile", "omniglot")  # no PATH
    images = {"train": np.zeros((4, 6, 28, 28, 1), np.float32), "test": np.zeros((4, 6, 28, 28, 1), np.float32)}
    base = dataclasses.replace(default_config("reptile", "digits"), train_shots=2, n_query=1)
    with pytest.raises(ConfigError, match="--n-way 4 or fewer"):
        make_trainer("reptile", dataclasses.replace(base, n_way=5), images)
    with pytest.raises(ConfigError, match="at most 6"):
        make_trainer("reptile", dataclasses.replace(base, n_way=2, k_shot=5, eval_query=2), images)
    with pytest.raises(ConfigError, match="serial"):
        dataclasses.replace(default_config("maml", "sine"), serial=True).validate("maml")


def test_cli_bad_data_exits_2(tmp_path, capsys):
    assert cli.main(["train", "maml", "--data", "imagenet", "--runs-dir", str(tmp_path)]) == 2
    assert "Unknown --data" in capsys.readouterr().err
    assert "reptile" in _algos_listing(capsys)


def _algos_listing(capsys):
    cli.main(["algos"])
    return capsys.readouterr().out


# ----------------------------------------------------------------------------- learning and run directories

TINY_SINE = dict(hidden=(8,), meta_iterations=20, eval_tasks=50, eval_inner_steps=4)


def test_run_dir_resume_continues_the_same_run(tmp_path):
    cfg = dataclasses.replace(default_config("reptile", "sine"), meta_batch=2, **TINY_SINE)
    full = train_in_dir(tmp_path / "full", "reptile", cfg, seeds=2, checkpoint_every=10)
    assert train_in_dir(tmp_path / "cut", "reptile", cfg, seeds=2, checkpoint_every=10, stop_after=10) is None
    assert not (tmp_path / "cut" / "eval.json").exists()
    resumed = train_in_dir(tmp_path / "cut", resume=True)
    assert resumed["mse_per_seed"] == full["mse_per_seed"] and full["mse_per_seed"][0] != full["mse_per_seed"][1]
    assert json.loads((tmp_path / "cut" / "eval.json").read_text())["mse"] == full["mse"]
    rows = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "seed,iteration,loss_after,loss_before" and len(rows) == 1 + 2 * 20
    assert (tmp_path / "full" / "metrics.csv").read_text() == (tmp_path / "cut" / "metrics.csv").read_text()
    # TensorBoard: each meta-iteration of each seed once, across the cut, equal to metrics.csv
    seed1 = tensorboard_scalars(tmp_path / "cut" / "tb")["seed1/loss_after"]
    csv_seed1 = [float(r.split(",")[2]) for r in rows[1 + 20:]]
    assert [s for s, _ in seed1] == list(range(1, 21)) and np.allclose([v for _, v in seed1], csv_seed1, rtol=1e-5)


def test_cli_trains_fomaml_on_sine(tmp_path, capsys):
    code = cli.main(["train", "fomaml", "--data", "sine", "--runs-dir", str(tmp_path), "--no-progress",
                     "--meta-iterations", "4", "--eval-tasks", "10", "--eval-inner-steps", "2", "--hidden", "8",
                     "--meta-batch", "2"])
    assert code == 0
    report = json.loads((tmp_path / "fomaml-sine" / "eval.json").read_text())
    assert report["algo"] == "fomaml" and report["eval_tasks_per_seed"] == 50  # whole evaluation batches
    assert "mse" in capsys.readouterr().out
    assert cli.main(["train", "fomaml", "--data", "sine", "--runs-dir", str(tmp_path)]) == 2  # the run exists
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["fomaml", "reptile"])
def test_meta_learning_beats_no_adaptation_on_sine(algo):
    """After 600 meta-iterations, 8 SGD steps on 10 points from the meta-learned initialisation reach a lower
    MSE than the same 8 steps from the random initialisation, and than no adaptation."""
    cfg = dataclasses.replace(default_config(algo, "sine"), hidden=(32, 32), meta_iterations=600, eval_tasks=100,
                              eval_inner_steps=8, meta_batch=4, outer_lr=1.0 if algo == "reptile" else 3e-3)
    trainer = make_trainer(algo, cfg)
    from surrogate.meta import evaluate

    start = trainer.init(jax.random.PRNGKey(0)[None])
    state, _ = trainer.run(start, trainer.data, 600)
    report, untrained = evaluate(trainer, state), evaluate(trainer, start)
    assert report["mse"] < 0.75 * untrained["mse"], (report, untrained)  # measured: 0.66 (fomaml), 0.51 (reptile)
    assert report["mse"] < 0.75 * report["mse_before"], report
