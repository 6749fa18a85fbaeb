"""rllab's double inverted pendulum (Duan et al. 2016, sec. 3.1; ``rllab/envs/mujoco/inverted_double_pendulum_env.py``
and ``vendor/mujoco_models/inverted_double_pendulum.xml.mako``) as a gymnax environment.

The model: a cart on a slider (range +-10, motor gear 500, control in [-1, 1]) carrying two hinged poles of
length 0.6, all capsules of density 1000 (cart radius 0.1, half-length 0.1: 10.47 kg; poles radius 0.045:
4.20 kg each), joint damping 0.05, gravity (1e-5, -9.81), RK4 with 0.01 s steps, two per action. Observation
(11): x, sin of both hinge angles, cos of both, velocities (x', theta1', theta2' of the joints, theta2 relative
to pole 1) clipped to +-10, and ``qfrc_constraint`` clipped to +-10. Reward ``10 - 0.01 x_tip^2 - (y_tip - 2)^2
- 1e-3 theta1'^2 - 5e-3 theta2'^2`` (``x_tip``, ``y_tip``: the top of pole 2), done when ``y_tip <= 1``; reset
x = 0, theta1 U(-20, 20) degrees, theta2 = 0, at rest. The action is the motor control (force ``500 a`` N):
rllab's ``normalize()`` is the identity on [-1, 1].

Where this departs from rllab's MuJoCo (1.31) simulation: the dynamics are the Lagrangian equations of the same
bodies, integrated with classical RK4 at the same steps, with the masses and capsule inertias MuJoCo 4 computes
from the geoms (MuJoCo 1.31's own formulas are not at hand): one step agrees with ``mujoco`` 4.0.0's RK4 step on
the same model to 1e-7 (the test checks it). There are no contacts (rllab's geoms have ``contype 0``), so the only
constraint is the slider's range: MuJoCo treats it as a soft limit with margin 0.01 (the cart sinks ~0.03 past it
and comes back); here the cart stops inelastically at +-10 (an impulse through the mass matrix, so the poles feel
it; the poles' speeds in the steps after a stop differ from MuJoCo's by up to ~20%).
``qfrc_constraint`` is the joint-space constraint force; with the slider limit as the only constraint its hinge
entries are 0 exactly as in MuJoCo, and its slider entry here is the stop's mean force over the step (0 away
from the stop, clipped to +-10 like rllab's).
"""
import math

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from surrogate.envs.rllab_basic import RllabEnv, unit_action

FRAME_SKIP = 2  # the model's custom numeric frame_skip


@struct.dataclass
class DoublePendulumParams(environment.EnvParams):
    cart_mass: float = 4.0 / 3.0 * math.pi * 0.1 ** 3 * 1000.0 + math.pi * 0.1 ** 2 * 0.2 * 1000.0
    pole1_length: float = 0.6
    pole2_length: float = 0.6
    pole_radius: float = 0.045
    density: float = 1000.0
    gravity: float = 9.81
    gravity_x: float = 1e-5
    damping: float = 0.05
    gear: float = 500.0
    slider_range: float = 10.0
    dt: float = 0.01
    max_steps_in_episode: int = 500


@struct.dataclass
class DoublePendulumState(environment.EnvState):
    qpos: jax.Array  # MuJoCo's joints: [x, theta1, theta2], theta counter-clockwise seen from -y (toward +x)
    qvel: jax.Array
    constraint: jax.Array  # qfrc_constraint of the last step
    time: int


def capsule_mass_inertia(length, radius, density):
    """Mass and inertia about the centre, across the axis, of a capsule (MuJoCo's ``inertiafromgeom``)."""
    cylinder = density * jnp.pi * radius ** 2 * length
    spheres = density * 4.0 / 3.0 * jnp.pi * radius ** 3
    inertia = cylinder * (3 * radius ** 2 + length ** 2) / 12 + spheres * (
        2 * radius ** 2 / 5 + length ** 2 / 4 + 3 * length * radius / 8)
    return cylinder + spheres, inertia


def mass_matrix(params: DoublePendulumParams, phi):
    """The mass matrix's entries ``(a, b, c, d, e, f)`` of ``[[a, b, c], [b, d, e], [c, e, f]]`` in the absolute
    coordinates ``(x, phi1, phi2)``, ``phi2 = theta1 + theta2``; pole ``i``'s centre at ``h_i / 2`` along it."""
    m1, i1 = capsule_mass_inertia(params.pole1_length, params.pole_radius, params.density)
    m2, i2 = capsule_mass_inertia(params.pole2_length, params.pole_radius, params.density)
    h1, a1, a2 = params.pole1_length, 0.5 * params.pole1_length, 0.5 * params.pole2_length
    k1, k2 = m1 * a1 + m2 * h1, m2 * a2
    return (params.cart_mass + m1 + m2, k1 * jnp.cos(phi[0]), k2 * jnp.cos(phi[1]), m1 * a1 ** 2 + i1 + m2 * h1 ** 2,
            m2 * h1 * a2 * jnp.cos(phi[0] - phi[1]), m2 * a2 ** 2 + i2), (k1, k2, m2 * h1 * a2)


def _inverse(a, b, c, d, e, f):
    """Rows of the inverse of the symmetric ``[[a, b, c], [b, d, e], [c, e, f]]`` (adjugate / determinant)."""
    adj = ((d * f - e ** 2, c * e - b * f, b * e - c * d), (c * e - b * f, a * f - c ** 2, b * c - a * e),
           (b * e - c * d, b * c - a * e, a * d - b ** 2))
    det = a * adj[0][0] + b * adj[0][1] + c * adj[0][2]
    return jnp.array(adj) / det


def accelerations(params: DoublePendulumParams, phi, phi_dot, force):
    """``(x'', phi1'', phi2'')`` from the Lagrangian of the cart and two poles (absolute angles, ``phi_dot`` with
    ``x'`` first): ``M(phi) q'' = [F - c x' + g_x m_total + k1 s1 phi1'^2 + k2 s2 phi2'^2,
    Q1 - k3 sin(phi1 - phi2) phi2'^2 + k1 (g s1 + g_x c1), Q2 + k3 sin(phi1 - phi2) phi1'^2 + k2 (g s2 + g_x c2)]``
    with ``k1 = m1 h1 / 2 + m2 h1``, ``k2 = m2 h2 / 2``, ``k3 = m2 h1 h2 / 2`` and the hinges' damping torques
    ``Q1 = -c theta1' + c theta2'``, ``Q2 = -c theta2'`` (``theta2' = phi2' - phi1'``) mapped to absolute angles."""
    entries, (k1, k2, k3) = mass_matrix(params, phi[1:])
    x_dot, w1, w2 = phi_dot
    s1, c1, s2, c2, sd = jnp.sin(phi[1]), jnp.cos(phi[1]), jnp.sin(phi[2]), jnp.cos(phi[2]), jnp.sin(phi[1] - phi[2])
    g, gx, damp = params.gravity, params.gravity_x, params.damping
    rhs = jnp.stack([force - damp * x_dot + gx * entries[0] + k1 * s1 * w1 ** 2 + k2 * s2 * w2 ** 2,
                     -damp * w1 + damp * (w2 - w1) - k3 * sd * w2 ** 2 + k1 * (g * s1 + gx * c1),
                     -damp * (w2 - w1) + k3 * sd * w1 ** 2 + k2 * (g * s2 + gx * c2)])
    return _inverse(*entries) @ rhs


def _rk4(params, y, force):
    """One classical RK4 step of ``y = [x, phi1, phi2, x', phi1', phi2']`` (MuJoCo's ``integrator="RK4"``)."""
    f = lambda y: jnp.concatenate([y[3:], accelerations(params, y[:3], y[3:], force)])
    k1 = f(y)
    k2 = f(y + 0.5 * params.dt * k1)
    k3 = f(y + 0.5 * params.dt * k2)
    k4 = f(y + params.dt * k3)
    return y + params.dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def _slider_stop(params, y):
    """The inelastic stop at ``|x| = slider_range``: the impulse that zeroes an outward ``x'`` (through the inverse
    mass matrix, so the poles take their share) and the state put back at the stop."""
    inverse = _inverse(*mass_matrix(params, y[1:3])[0])
    outward = jnp.logical_and(jnp.abs(y[0]) > params.slider_range, y[0] * y[3] > 0)
    impulse = jnp.where(outward, -y[3] / inverse[0, 0], 0.0)
    q = y[:3].at[0].set(jnp.clip(y[0], -params.slider_range, params.slider_range))
    return jnp.concatenate([q, y[3:] + impulse * inverse[0]]), impulse


def tip(params: DoublePendulumParams, qpos):
    """``(x, y)`` of the site at the top of pole 2."""
    phi1, phi2 = qpos[1], qpos[1] + qpos[2]
    return (qpos[0] + params.pole1_length * jnp.sin(phi1) + params.pole2_length * jnp.sin(phi2),
            params.pole1_length * jnp.cos(phi1) + params.pole2_length * jnp.cos(phi2))


class DoubleInvertedPendulum(RllabEnv):
    """``inverted_double_pendulum_env.py`` on the Lagrangian model (module docstring)."""

    env_id = "DoubleInvertedPendulum-rllab"
    obs_dim = 11
    limited_sensors = (0, 1, 2, 3, 4)  # x and the sin/cos of both hinges (the positions)
    system_id_ranges = {"pole1_length": (0.5, 1.0), "pole2_length": (0.5, 1.0)}  # 0.6 + U(-0.1, 0.4) each

    @property
    def default_params(self) -> DoublePendulumParams:
        return DoublePendulumParams()

    def reset_env(self, key, params):
        theta1 = (jax.random.uniform(key, (), jnp.float32) - 0.5) * 40.0 / 180.0 * jnp.pi
        state = DoublePendulumState(time=0, qpos=jnp.stack([0.0, theta1, 0.0]), qvel=jnp.zeros(3, jnp.float32),
                                    constraint=jnp.zeros(3, jnp.float32))
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.concatenate([state.qpos[:1], jnp.sin(state.qpos[1:]), jnp.cos(state.qpos[1:]),
                                jnp.clip(state.qvel, -10.0, 10.0), jnp.clip(state.constraint, -10.0, 10.0)])

    def is_terminated(self, state, params):
        return tip(params, state.qpos)[1] <= 1.0

    def step_env(self, key, state, action, params):
        force = params.gear * unit_action(action)
        to_absolute = jnp.array([[1.0, 0, 0], [0, 1, 0], [0, 1, 1]])  # (x, theta1, theta2) -> (x, phi1, phi2)

        def substep(_, carry):
            y, stop = _slider_stop(params, _rk4(params, carry[0], force))
            return y, carry[1] + stop

        y, impulse = jax.lax.fori_loop(0, FRAME_SKIP, substep, (jnp.concatenate(
            [to_absolute @ state.qpos, to_absolute @ state.qvel]), jnp.zeros((), jnp.float32)))
        to_joints = jnp.array([[1.0, 0, 0], [0, 1, 0], [0, -1, 1]])
        constraint = jnp.stack([impulse / (FRAME_SKIP * params.dt), 0.0, 0.0])
        state = state.replace(qpos=to_joints @ y[:3], qvel=to_joints @ y[3:], constraint=constraint,
                              time=state.time + 1)
        x_tip, y_tip = tip(params, state.qpos)
        reward = 10.0 - 0.01 * x_tip ** 2 - (y_tip - 2.0) ** 2 - 1e-3 * state.qvel[1] ** 2 - 5e-3 * state.qvel[2] ** 2
        return self._out(state, params, reward, self.is_terminated(state, params))
