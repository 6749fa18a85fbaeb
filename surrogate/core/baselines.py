"""rllab's linear feature baseline (Duan et al. 2016, section 5; ``rllab/baselines/linear_feature_baseline.py``).

A state's value is fitted as a linear function of the features ``[clip(o, +-10), clip(o, +-10)^2, t/100,
(t/100)^2, (t/100)^3, 1]``, ``t`` the step's index within its episode (``linear_features``), by ridge
regression on the empirical returns (``fit_linear``). REPS (``core.reps``) uses the same features.
"""
import jax
import jax.numpy as jnp


def num_features(obs_dim: int) -> int:
    """``2 obs_dim + 4``: the observation, its square, three powers of time and a constant."""
    return 2 * obs_dim + 4


def linear_features(obs, steps):
    """rllab's ``LinearFeatureBaseline._features``: ``obs [..., *obs_shape]`` (flattened per step) and
    ``steps [...]`` (integer index within the episode) -> ``[..., 2 D + 4]`` float32."""
    o = jnp.clip(obs.reshape(*steps.shape, -1).astype(jnp.float32), -10.0, 10.0)
    t = (steps.astype(jnp.float32) / 100.0)[..., None]
    return jnp.concatenate([o, o * o, t, t * t, t * t * t, jnp.ones_like(t)], axis=-1)


def ridge(features, targets, reg_coeff: float):
    """The minimiser of ``|X w - y|^2 + reg_coeff |w|^2`` (rllab solves the normal equations
    ``(X^T X + reg I) w = X^T y``), computed by a QR factorisation of ``[X; sqrt(reg) I]``: the same
    solution without squaring the condition number of ``X`` (which float32 could not hold, with
    ``t^3`` and ``o^2`` in the features). Non-finite if the triangular solve breaks down."""
    x = features.reshape(-1, features.shape[-1])
    k = x.shape[1]
    a = jnp.concatenate([x, jnp.sqrt(reg_coeff) * jnp.eye(k, dtype=x.dtype)])
    b = jnp.concatenate([targets.reshape(-1).astype(x.dtype), jnp.zeros(k, x.dtype)])
    q, r = jnp.linalg.qr(a)
    return jax.scipy.linalg.solve_triangular(r, q.T @ b, lower=False)


def fit_linear(features, targets, reg_coeff: float = 1e-5, tries: int = 5):
    """``LinearFeatureBaseline.fit``: ridge regression of ``targets [...]`` on ``features [..., F]``;
    as in rllab, the ridge coefficient is raised x10 (up to ``tries`` times) until the solution is
    finite. A ``while_loop``: vmapped over seeds it refits only while some seed needs it."""
    def retry(carry):
        i, _ = carry
        return i + 1, ridge(features, targets, reg_coeff * 10.0 ** i)

    def bad(carry):
        i, w = carry
        return (i < tries) & ~jnp.all(jnp.isfinite(w))

    return jax.lax.while_loop(bad, retry, (1, ridge(features, targets, reg_coeff)))[1]


def predict_linear(coeffs, features):
    """``LinearFeatureBaseline.predict``: ``features @ coeffs`` (rllab predicts 0 before the first fit;
    zero coefficients do the same)."""
    return features @ coeffs
