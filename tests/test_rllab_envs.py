"""rllab's basic tasks and their LS / NO / SI variants (Duan et al. 2016): conformance of every id, dynamics against
equations written here a second time in NumPy (Box2D's step in closed form, the textbook equations of motion in the
limit of small steps, MuJoCo for the double pendulum), rewards on hand-chosen states, and what each variant hides."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.envs import rllab_basic as rb
from surrogate.envs import rllab_partial
from surrogate.envs.rllab_pendulum import DoubleInvertedPendulum, DoublePendulumState
from surrogate.errors import ConfigError, EnvNotFoundError

TASKS = list(rllab_partial.TASKS)
KEY = jax.random.key(0)


def _task(env_id):
    return env_id[:env_id.index("-rllab") + 6]


def _terminal(task, obs, physics):
    """The table's termination conditions, read off the full observation (and the drawn pole lengths for -SI)."""
    if task == "CartPoleBalancing-rllab":
        return (np.abs(obs[..., 0]) > 2.4) | (np.abs(obs[..., 2]) > 0.2)
    if task == "CartPoleSwingUp-rllab":
        return np.abs(obs[..., 0]) > 3
    if task == "MountainCar-rllab":
        return (obs[..., 0] >= 0.6) | (np.abs(obs[..., 0]) >= 2)
    if task == "AcrobotSwingUp-rllab":
        return np.zeros(obs.shape[:-1], bool)
    h1, h2 = (np.asarray(physics[f]) for f in ("pole1_length", "pole2_length")) if physics else (0.6, 0.6)
    cos2 = obs[..., 3] * obs[..., 4] - obs[..., 1] * obs[..., 2]  # cos(theta1 + theta2)
    return h1 * obs[..., 3] + h2 * cos2 <= 1.0


@functools.lru_cache(maxsize=None)
def _rollout(env_id, num_envs=3):
    """Random actions (beyond [-1, 1]: clipped) through ``JaxEnv.step``, auto-reset inside; the step keys depend on
    the step index only, so envs of different horizons see the same actions. Compiled once per id for every test:
    ``(run, results under KEY)``; results: initial obs, then per step obs, reward, done, terminated, truncated,
    final observation and the -SI parameters the transition used (``None`` for the other envs)."""
    env = envs.make(env_id)
    steps = env.max_episode_steps + 20

    def run(key):
        k0, k1 = jax.random.split(key)
        obs0, state = jax.vmap(env.reset)(jax.random.split(k0, num_envs))

        def body(state, t):
            ka, ks = jax.random.split(jax.random.fold_in(k1, t))
            actions = jax.random.uniform(ka, (num_envs, 1), minval=-1.5, maxval=1.5)
            obs, next_state, reward, done, info = jax.vmap(env.step)(jax.random.split(ks, num_envs), state, actions)
            return next_state, (obs, reward, done, info["terminated"], info["truncated"], info["final_observation"],
                                getattr(state, "physics", None))

        return obs0, jax.lax.scan(body, state, jnp.arange(steps))[1]

    run = jax.jit(run)
    return run, jax.tree.map(np.asarray, run(KEY))


@pytest.mark.parametrize("env_id", rllab_partial.IDS)
def test_conformance(env_id):
    env = envs.make(env_id)
    task = _task(env_id)
    variant = env_id[len(task) + 1:]
    assert env.id == env_id and env.backend == "jax" and not env.discrete and env.action_dim == 1
    assert env.action_bounds == (-1.0, 1.0)
    horizon = 100 if variant else 500
    assert env.max_episode_steps == horizon
    full_dim = rllab_partial.TASKS[task].obs_dim
    dim = len(rllab_partial.TASKS[task].limited_sensors) if variant == "LS" else full_dim
    assert env.obs_shape == (dim,) and env.observation_space().shape == (dim,)

    run, (obs0, (obs, reward, done, terminated, truncated, final, physics)) = _rollout(env_id)
    again = run(KEY)
    for got, want in zip((obs0, obs, reward), (again[0],) + again[1][:2]):
        np.testing.assert_array_equal(got, want)  # deterministic under a fixed key
    assert not np.array_equal(run(jax.random.key(1))[1][0], obs)
    assert obs.dtype == np.float32 and reward.dtype == np.float32 and np.isfinite(obs).all()
    assert obs0.shape == (3, dim) and obs.shape == (horizon + 20, 3, dim)

    # episode lengths: truncated exactly at the horizon, never longer; auto-reset after every end
    length = np.zeros(3, int)
    for t in range(horizon + 20):
        length += 1
        np.testing.assert_array_equal(truncated[t], length >= horizon)
        length[done[t]] = 0
    np.testing.assert_array_equal(done, terminated | truncated)
    assert not np.array_equal(obs[done], final[done])
    if variant in ("", "SI"):
        np.testing.assert_array_equal(terminated, _terminal(task, final, physics))


def test_ids_are_listed_and_bad_ids_fail_clearly():
    listed = envs.list_envs()["jax"]
    assert all(env_id in listed for env_id in rllab_partial.IDS) and len(rllab_partial.IDS) == 20
    with pytest.raises(EnvNotFoundError, match="CartPoleBalancing-rllab"):
        envs.make("CartPoleBalancing-rllab-XX")
    with pytest.raises(ConfigError, match="LS, NO, SI"):
        rllab_partial.variant(rb.CartPoleBalancing(), "x", "XX")
    with pytest.raises(ConfigError, match="max_steps_in_episode"):
        envs.make("MountainCar-rllab", max_steps_in_episode=0)
    short = envs.make("MountainCar-rllab-NO", max_steps_in_episode=30)
    assert short.id == "MountainCar-rllab-NO[max_steps=30]" and short.max_episode_steps == 30


# --- dynamics -----------------------------------------------------------------------------------------------------

def _numpy_cartpole_step(p, s, a):
    """Box2D's step for the cart-pole, by hand: projected momentum ``A q'`` plus the forces' impulse, then positions."""
    m, h = p.pole_density * p.pole_length * p.pole_width, p.pole_length / 2
    inertia = m * (p.pole_length ** 2 + p.pole_width ** 2) / 12
    x, x_dot, th, th_dot = s
    th_prev = th - p.dt * th_dot
    moment = np.array([[p.cart_mass + m, -m * h * np.cos(th_prev)],
                       [-m * h * np.cos(th), m * h ** 2 * np.cos(th - th_prev) + inertia]])
    mass = np.array([[p.cart_mass + m, -m * h * np.cos(th)], [-m * h * np.cos(th), m * h ** 2 + inertia]])
    force = np.array([10 * np.clip(a, -1, 1), m * p.gravity * h * np.sin(th)])
    v = np.linalg.solve(mass, moment @ [x_dot, th_dot] + p.dt * force)
    return np.array([x + p.dt * v[0], v[0], th + p.dt * v[1], v[1]])


def _numpy_acrobot_step(p, s, a):
    m, length, a_ = p.link_density * p.link_width * p.link_length, p.link_length, p.link_length / 2
    inertia = m * (length ** 2 + p.link_width ** 2) / 12
    q, v = np.array(s[:2], float), np.array(s[2:], float)
    torque = 50 * np.clip(a, -1, 1)
    for _ in range(2):
        (f1, f2), (g1, g2) = q, q - p.dt * v
        moment = np.array([[(m * a_ ** 2 + m * length ** 2) * np.cos(f1 - g1) + inertia,
                            m * length * a_ * np.cos(f1 - g2)],
                           [m * a_ * length * np.cos(f2 - g1), m * a_ ** 2 * np.cos(f2 - g2) + inertia]])
        mass = np.array([[m * a_ ** 2 + m * length ** 2 + inertia, m * length * a_ * np.cos(f1 - f2)],
                         [m * length * a_ * np.cos(f1 - f2), m * a_ ** 2 + inertia]])
        force = np.array([-torque - (m * a_ + m * length) * p.gravity * np.sin(f1),
                          torque - m * a_ * p.gravity * np.sin(f2)])
        v = np.linalg.solve(mass, moment @ v + p.dt * force)
        q = q + p.dt * v
    return np.concatenate([q, v])


def _numpy_mountain_car_step(p, s, a):
    k = 2 * np.pi / p.track_width
    slope = lambda x: k * np.sin(k * x)
    turn = lambda x: k ** 2 * np.cos(k * x) / (1 + slope(x) ** 2)  # d(angle)/dx, angle = atan(slope)
    inertia = p.car_mass * (p.car_length ** 2 + p.car_thickness ** 2) / 12
    x, x_dot = s
    x_prev = x - p.dt * x_dot
    moment = p.car_mass * (1 + slope(x) * slope(x_prev)) + inertia * turn(x) * turn(x_prev)
    mass = p.car_mass * (1 + slope(x) ** 2) + inertia * turn(x) ** 2
    force = np.clip(a, -1, 1) * np.sqrt(1 + slope(x) ** 2) - p.car_mass * p.gravity * slope(x) - p.drag * x_dot
    v = (moment * x_dot + p.dt * force) / mass
    return np.array([x + p.dt * v, v])


CASES = {  # env, state class, state fields, NumPy step, random state scale, indices of the velocities
    "cartpole": (rb.CartPoleBalancing(), rb.CartPoleState, ("x", "x_dot", "theta", "theta_dot"),
                 _numpy_cartpole_step, (1.0, 2.0, 3.0, 5.0), [1, 3]),
    "acrobot": (rb.AcrobotSwingUp(), rb.AcrobotState, ("phi1", "phi2", "omega1", "omega2"),
                _numpy_acrobot_step, (3.0, 3.0, 8.0, 8.0), [2, 3]),
    "mountain_car": (rb.MountainCar(), rb.MountainCarState, ("x", "x_dot"), _numpy_mountain_car_step, (1.5, 2.0),
                     [1]),
}


@pytest.fixture(scope="module")
def box2d_steps():
    return {name: jax.jit(env.step_env) for name, (env, *_) in CASES.items()}


def _state(case, values):
    env, cls, fields, *_ = CASES[case]
    return cls(time=0, **{f: jnp.float32(v) for f, v in zip(fields, values)})


@pytest.mark.parametrize("case", list(CASES))
def test_box2d_step_matches_the_closed_form(case, box2d_steps):
    env, _, fields, numpy_step, scale, _ = CASES[case]
    rng = np.random.default_rng(3)
    for _ in range(5):
        values, a = rng.uniform(-1, 1, len(fields)) * scale, rng.uniform(-1.3, 1.3)
        _, state, *_ = box2d_steps[case](KEY, _state(case, values), jnp.array([a]), env.default_params)
        got = np.array([getattr(state, f) for f in fields])
        want = numpy_step(env.default_params, values, a)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _lagrangian_accelerations(case, p, values, a):
    """Textbook equations of motion (second derivation): cart-pole (pole angle counter-clockwise from upright),
    Spong's two-link acrobot in absolute angles, a body sliding on ``y = 1 - cos(k x)`` turning with the slope."""
    if case == "cartpole":
        _, _, th, th_dot = values
        m, h = p.pole_density * p.pole_length * p.pole_width, p.pole_length / 2
        big_i = m * (p.pole_length ** 2 + p.pole_width ** 2) / 12 + m * h ** 2
        mass = np.array([[p.cart_mass + m, -m * h * np.cos(th)], [-m * h * np.cos(th), big_i]])
        rhs = [10 * a - m * h * np.sin(th) * th_dot ** 2, m * p.gravity * h * np.sin(th)]
        return np.linalg.solve(mass, rhs)
    if case == "acrobot":
        f1, f2, w1, w2 = values
        m, length, h = p.link_density * p.link_width * p.link_length, p.link_length, p.link_length / 2
        inertia = m * (length ** 2 + p.link_width ** 2) / 12
        c, s = np.cos(f1 - f2), np.sin(f1 - f2)
        mass = np.array([[m * h ** 2 + inertia + m * length ** 2, m * length * h * c],
                         [m * length * h * c, m * h ** 2 + inertia]])
        rhs = [-50 * a - m * length * h * s * w2 ** 2 - (m * h + m * length) * p.gravity * np.sin(f1),
               50 * a + m * length * h * s * w1 ** 2 - m * h * p.gravity * np.sin(f2)]
        return np.linalg.solve(mass, rhs)
    x, x_dot = values
    k, inertia = 2 * np.pi / p.track_width, p.car_mass * (p.car_length ** 2 + p.car_thickness ** 2) / 12
    slope = lambda x: k * np.sin(k * x)
    mass = lambda x: p.car_mass * (1 + slope(x) ** 2) + inertia * (k ** 2 * np.cos(k * x) / (1 + slope(x) ** 2)) ** 2
    dmass = (mass(x + 1e-6) - mass(x - 1e-6)) / 2e-6
    force = a * np.sqrt(1 + slope(x) ** 2) - p.car_mass * p.gravity * slope(x) - p.drag * x_dot
    return np.array([(force - 0.5 * dmass * x_dot ** 2) / mass(x)])


@pytest.mark.parametrize("case", list(CASES))
def test_small_steps_follow_the_equations_of_motion(case, box2d_steps):
    """In the limit of small steps Box2D's step is the Lagrangian's: (q'_new - q') / dt -> q''."""
    env, _, fields, _, scale, vel = CASES[case]
    p = env.default_params.replace(dt=2e-4)
    rng = np.random.default_rng(4)
    for _ in range(4):
        values, a = rng.uniform(-1, 1, len(fields)) * np.array(scale) / 2, rng.uniform(-1, 1)
        _, state, *_ = box2d_steps[case](KEY, _state(case, values), jnp.array([a]), p)
        velocities = np.array([getattr(state, f) for f in fields])[vel]
        finite = (velocities - values[vel]) / (p.dt * (2 if case == "acrobot" else 1))  # the acrobot: 2 substeps
        want = _lagrangian_accelerations(case, p, values, a)
        np.testing.assert_allclose(finite, want, rtol=0.02, atol=0.02 * np.abs(want).max() + 0.05)


def test_double_pendulum_conserves_energy_without_damping_and_force():
    """Energy of cart + two capsules written out here, kept to 2e-5 over a second of falling by RK4 at 2.5 ms (at
    rllab's 10 ms it drifts 0.16%: RK4's error, which shrinks as dt^4)."""
    env = DoubleInvertedPendulum()
    p = env.default_params.replace(damping=0.0, gravity_x=0.0, dt=0.0025)
    r, h = p.pole_radius, p.pole1_length

    def energy(qpos, qvel):
        m = p.density * (math.pi * r ** 2 * h + 4 / 3 * math.pi * r ** 3)
        i_c = p.density * math.pi * r ** 2 * h * (3 * r ** 2 + h ** 2) / 12 + \
            p.density * 4 / 3 * math.pi * r ** 3 * (2 * r ** 2 / 5 + h ** 2 / 4 + 3 * h * r / 8)
        (x, t1, t2), (xd, w1, w2) = qpos, qvel
        v1 = np.array([xd + h / 2 * np.cos(t1) * w1, -h / 2 * np.sin(t1) * w1])
        v2 = np.array([xd + h * np.cos(t1) * w1 + h / 2 * np.cos(t1 + t2) * (w1 + w2),
                       -h * np.sin(t1) * w1 - h / 2 * np.sin(t1 + t2) * (w1 + w2)])
        kinetic = 0.5 * p.cart_mass * xd ** 2 + 0.5 * m * (v1 @ v1 + v2 @ v2) + 0.5 * i_c * (w1 ** 2 + (w1 + w2) ** 2)
        height = m * (h / 2 * np.cos(t1)) + m * (h * np.cos(t1) + h / 2 * np.cos(t1 + t2))
        return kinetic + p.gravity * height

    state = DoublePendulumState(time=0, qpos=jnp.array([0.0, 0.4, -0.3]), qvel=jnp.array([0.5, 1.0, -2.0]),
                                constraint=jnp.zeros(3))
    e0 = energy(np.asarray(state.qpos, float), np.asarray(state.qvel, float))
    step = jax.jit(env.step_env)
    for _ in range(200):
        _, state, *_ = step(KEY, state, jnp.zeros(1), p)
    moved = np.abs(np.asarray(state.qpos) - [0.0, 0.4, -0.3]).max()
    assert moved > 0.5  # it did swing
    np.testing.assert_allclose(energy(np.asarray(state.qpos, float), np.asarray(state.qvel, float)), e0, rtol=2e-5)


def test_double_pendulum_matches_mujoco():
    mujoco = pytest.importorskip("mujoco")
    xml = """<mujoco><compiler inertiafromgeom='true'/>
      <default><joint damping='0.05'/><geom contype='0'/></default>
      <option timestep='0.01' gravity='1e-5 0 -9.81' integrator='RK4'/>
      <worldbody><body name='cart'><joint name='slider' type='slide' limited='true' axis='1 0 0' range='-10 10'/>
        <geom type='capsule' quat='0.707 0 0.707 0' size='0.1 0.1'/>
        <body name='pole'><joint type='hinge' axis='0 1 0'/>
          <geom type='capsule' fromto='0 0 0 0 0 0.6' size='0.045 0.3'/>
          <body name='pole2' pos='0 0 0.6'><joint type='hinge' axis='0 1 0'/>
            <geom type='capsule' fromto='0 0 0 0 0 0.6' size='0.045 0.3'/></body></body></body></worldbody>
      <actuator><motor joint='slider' gear='500' ctrlrange='-1 1' ctrllimited='true'/></actuator></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    env = DoubleInvertedPendulum()
    step = jax.jit(env.step_env)
    rng = np.random.default_rng(0)
    for _ in range(4):
        qpos, qvel, a = rng.uniform(-1, 1, 3) * [3, 1, 1], rng.uniform(-2, 2, 3), rng.uniform(-1, 1)
        data.qpos[:], data.qvel[:], data.ctrl[:] = qpos, qvel, a
        mujoco.mj_step(model, data)
        mujoco.mj_step(model, data)  # frame_skip 2
        state = DoublePendulumState(time=0, qpos=jnp.asarray(qpos, jnp.float32), qvel=jnp.asarray(qvel, jnp.float32),
                                    constraint=jnp.zeros(3))
        _, state, *_ = step(KEY, state, jnp.array([a]), env.default_params)
        np.testing.assert_allclose(state.qpos, data.qpos, atol=1e-5)
        np.testing.assert_allclose(state.qvel, data.qvel, atol=1e-4)


def test_double_pendulum_slider_stops_the_cart():
    env = DoubleInvertedPendulum()
    state = DoublePendulumState(time=0, qpos=jnp.array([9.99, 0.0, 0.0]), qvel=jnp.array([2.0, 0.0, 0.0]),
                                constraint=jnp.zeros(3))
    obs, state, *_ = env.step_env(KEY, state, jnp.ones(1), env.default_params)
    assert float(state.qpos[0]) == 10.0 and abs(float(state.qvel[0])) < 1e-5
    assert float(state.qvel[1]) > 0.1  # the poles took the impulse: they swing on past the stopped cart
    np.testing.assert_array_equal(obs[8:], [-10.0, 0.0, 0.0])  # the stop's force, clipped like rllab's


# --- rewards on hand-chosen states --------------------------------------------------------------------------------

def test_rewards_follow_the_table():
    bal, swing, car, acro, dip = (cls() for cls in rllab_partial.TASKS.values())
    s = rb.CartPoleState(time=0, x=jnp.float32(0.0), x_dot=jnp.float32(0.0), theta=jnp.float32(0.1),
                         theta_dot=jnp.float32(0.0))
    _, s1, r, done, _ = bal.step_env(KEY, s, jnp.array([0.5]), bal.default_params)
    assert not done and np.isclose(r, 10 - (1 - np.cos(float(s1.theta))) - 1e-5 * 5.0 ** 2, atol=1e-5)
    _, _, r, done, _ = bal.step_env(KEY, s.replace(x=jnp.float32(2.39), x_dot=jnp.float32(4.0)), jnp.zeros(1),
                                    bal.default_params)
    assert done and r == 0.0  # the step that ends it pays nothing
    _, s1, r, done, _ = swing.step_env(KEY, s.replace(theta=jnp.float32(3.0)), jnp.zeros(1), swing.default_params)
    assert not done and np.isclose(r, np.cos(float(s1.theta)))
    _, _, r, done, _ = swing.step_env(KEY, s.replace(x=jnp.float32(2.99), x_dot=jnp.float32(2.0)), jnp.zeros(1),
                                      swing.default_params)
    assert done and r == -100.0
    m = rb.MountainCarState(time=0, x=jnp.float32(0.55), x_dot=jnp.float32(1.5))
    _, m1, r, done, _ = car.step_env(KEY, m, jnp.ones(1), car.default_params)
    assert done and float(m1.x) >= 0.6 and np.isclose(r, -1 + (1 - np.cos(np.pi * float(m1.x) / 2)) + 0.17)
    p = acro.default_params
    for (phi1, phi2), dist in (((np.pi, np.pi), 0.0), ((0.0, 0.0), 4.0), ((np.pi / 2, np.pi / 2), 2.0),
                               ((np.pi / 2, -np.pi / 2), np.sqrt(8.0))):  # rllab's get_tip_pos: link 2 mirrored
        assert np.isclose(rb.acrobot_tip_distance(p, phi1, phi2), dist, atol=1e-5)
    up = rb.AcrobotState(time=0, phi1=jnp.float32(np.pi), phi2=jnp.float32(np.pi), omega1=jnp.float32(0.0),
                         omega2=jnp.float32(0.0))
    _, a1, r, done, _ = acro.step_env(KEY, up, jnp.zeros(1), p)
    assert not done and abs(r) < 1e-3 and np.isclose(r, -rb.acrobot_tip_distance(p, a1.phi1, a1.phi2))
    upright = DoublePendulumState(time=0, qpos=jnp.zeros(3), qvel=jnp.zeros(3), constraint=jnp.zeros(3))
    _, _, r, done, _ = dip.step_env(KEY, upright, jnp.zeros(1), dip.default_params)
    assert not done and np.isclose(r, 10 - (1.2 - 2) ** 2, atol=1e-4)  # tip at (0, 1.2)
    tilted = upright.replace(qpos=jnp.array([1.0, 0.6, 0.0]), qvel=jnp.array([0.0, 0.0, 1.0]))
    _, d1, r, done, _ = dip.step_env(KEY, tilted, jnp.zeros(1), dip.default_params)
    x_tip = float(d1.qpos[0]) + 0.6 * np.sin(float(d1.qpos[1])) + 0.6 * np.sin(float(d1.qpos[1] + d1.qpos[2]))
    y_tip = 0.6 * np.cos(float(d1.qpos[1])) + 0.6 * np.cos(float(d1.qpos[1] + d1.qpos[2]))
    want = 10 - 0.01 * x_tip ** 2 - (y_tip - 2) ** 2 - 1e-3 * float(d1.qvel[1]) ** 2 - 5e-3 * float(d1.qvel[2]) ** 2
    assert done and y_tip <= 1 and np.isclose(r, want, atol=1e-4)


# --- the partially observed variants ------------------------------------------------------------------------------

@pytest.mark.parametrize("task", TASKS)
def test_limited_sensors_keep_the_positions(task):
    idx = list(rllab_partial.TASKS[task].limited_sensors)
    full_obs0, (full_obs, *_) = _rollout(task)[1]
    obs0, (obs, *_) = _rollout(task + "-LS")[1]
    np.testing.assert_array_equal(obs0, full_obs0[..., idx])
    np.testing.assert_array_equal(obs[:99], full_obs[:99, :, idx])  # before the variant truncates at 100


def test_noisy_observations_have_std_0_1():
    env = envs.make("DoubleInvertedPendulum-rllab-NO")
    obs, state = jax.jit(jax.vmap(env.reset))(jax.random.split(KEY, 2000))
    noise = np.asarray(obs) - np.asarray(jax.vmap(env.env._env.get_obs)(state.inner))
    assert abs(noise.std() - 0.1) < 0.003 and abs(noise.mean()) < 0.003
    assert np.abs(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]) < 0.1  # entry-wise


def test_actions_are_applied_three_steps_late():
    env = envs.make("CartPoleSwingUp-rllab-NO")  # swing-up: no early termination from rest
    base = rb.CartPoleSwingUp()
    params = env.default_params
    actions = jnp.linspace(-0.9, 0.9, 12)[:, None]
    _, state = env.reset(KEY)
    inner = state.inner
    step, base_step = jax.jit(env.env.step_env), jax.jit(base.step_env)
    applied = [0.0, 0.0, 0.0] + [float(a) for a in actions[:, 0]]
    for t in range(12):
        np.testing.assert_array_equal(state.queue[:, 0], applied[t:t + 3])
        _, state, reward, *_ = step(jax.random.key(t), state, actions[t], params)
        _, inner, base_reward, *_ = base_step(KEY, inner, jnp.array([applied[t]]), params)
        np.testing.assert_array_equal(state.inner.x, inner.x)
        np.testing.assert_array_equal(state.inner.theta_dot, inner.theta_dot)
        assert reward == base_reward
    # an auto-reset through JaxEnv.step empties the queue
    far = state.replace(inner=state.inner.replace(x=jnp.float32(5.0)))
    _, after, _, done, _ = env.step(KEY, far, jnp.ones(1))
    assert done and not np.asarray(after.queue).any()


@pytest.mark.parametrize("task", TASKS)
def test_system_identification_redraws_parameters_each_episode(task):
    env = envs.make(task + "-SI")
    _, (_, (_, _, done, *_, physics)) = _rollout(task + "-SI")
    for field, (low, high) in rllab_partial.TASKS[task].system_id_ranges.items():
        for i in range(done.shape[1]):
            ends = np.flatnonzero(done[:, i])
            assert len(ends) >= 1
            values = physics[field][:, i]
            assert ((values >= low) & (values <= high)).all()
            episodes = [e for e in np.split(values, ends + 1) if len(e)]
            assert all((e == e[0]).all() for e in episodes)  # fixed within an episode
            firsts = [e[0] for e in episodes]
            assert len(set(firsts)) == len(firsts)  # redrawn at every reset, the auto-resets included
    # and the dynamics use them: one step equals the task's under the drawn parameters
    _, state = env.reset(KEY)
    obs, *_ = env.env.step_env(KEY, state, jnp.ones(1), env.default_params)
    task_env = rllab_partial.TASKS[task]()
    want, *_ = task_env.step_env(KEY, state.inner, jnp.ones(1), env.default_params.replace(**state.physics))
    np.testing.assert_array_equal(obs, want)


def test_box2d_tasks_track_pybox2d_on_rllabs_models():
    """rllab's cart-pole and acrobot worlds (``cartpole.xml.mako``, ``double_pendulum.xml.mako``) built in pybox2d
    (``pip install box2d``, not a dependency) with consistent initial states: the same trajectories at first, and close
    for 1-1.5 s of random swinging (Box2D's solver is iterative and corrects positions; the motion is chaotic)."""
    box2d = pytest.importorskip("Box2D")

    def rect(length):  # rllab's compute_rect_vertices for a vertical 0.1-wide rectangle from (0, 0) to (0, length)
        return [(0.05, 0), (0.05, length), (-0.05, length), (-0.05, 0)]

    world = box2d.b2World(allow_sleeping=False)  # gravity (0, -10)
    half = 3 / 12 ** 0.5 / 2  # the cart's half height: the hinge sits on its top, the prismatic joint on the track line
    cart = world.CreateBody(type=2, position=(0.05, -0.1))
    cart.CreatePolygonFixture(box=(2 / 12 ** 0.5, half), density=1)
    pole = world.CreateBody(type=2, position=(0.05, -0.1 + half))
    pole.CreatePolygonFixture(vertices=rect(1.0), density=1, groupIndex=-1)
    track = world.CreateBody(type=0, position=(0, -0.1))
    world.CreateJoint(type=box2d.b2RevoluteJoint, bodyA=cart, bodyB=pole, anchor=(0.05, -0.1 + half))
    world.CreateJoint(type=box2d.b2PrismaticJoint, bodyA=track, bodyB=cart)
    x, x_dot, theta, theta_dot = 0.05, 0.1, 0.05, -0.1
    cart.linearVelocity = (x_dot, 0)
    pole.angle, pole.angularVelocity = theta, theta_dot
    pole.linearVelocity = (x_dot - 0.5 * np.cos(theta) * theta_dot, -0.5 * np.sin(theta) * theta_dot)
    env = rb.CartPoleSwingUp()
    step = jax.jit(env.step_env)
    state = _state("cartpole", (x, x_dot, theta, theta_dot))
    rng = np.random.default_rng(0)
    for t in range(20):
        a = rng.uniform(-1, 1)
        cart.ApplyForce(cart.GetWorldVector((10 * a, 0)), cart.GetWorldPoint((0, 0)), True)
        world.Step(0.05, 8, 3)
        obs, state, *_ = step(KEY, state, jnp.array([a]), env.default_params)
        reference = [cart.position[0], cart.linearVelocity[0], pole.angle, pole.angularVelocity]
        np.testing.assert_allclose(obs, reference, atol=1e-3 if t < 5 else 0.1)

    world = box2d.b2World(allow_sleeping=False)
    link1 = world.CreateBody(type=2, position=(0, 0))
    link1.CreatePolygonFixture(vertices=[(x, -y) for x, y in rect(1.0)], density=5.0, groupIndex=-1)
    link2 = world.CreateBody(type=2, position=(0, -1))
    link2.CreatePolygonFixture(vertices=[(x, -y) for x, y in rect(1.0)], density=5.0, groupIndex=-1)
    ground = world.CreateBody(type=0, position=(0, -0.1))
    world.CreateJoint(type=box2d.b2RevoluteJoint, bodyA=ground, bodyB=link1, anchor=(0, 0))
    joint = world.CreateJoint(type=box2d.b2RevoluteJoint, bodyA=link1, bodyB=link2, anchor=(0, -1))
    env = rb.AcrobotSwingUp()
    step = jax.jit(env.step_env)
    state = _state("acrobot", (0.0, 0.0, 0.0, 0.0))
    for t in range(30):  # angular velocities up to 9 rad/s; beyond 40 steps (> 10 rad/s) they part
        a = rng.uniform(-0.3, 0.3)
        for _ in range(2):  # rllab's torque control: a motor at +-1e5 rad/s limited to |torque|
            joint.motorEnabled, joint.motorSpeed, joint.maxMotorTorque = True, math.copysign(1e5, a), abs(50 * a)
            world.Step(0.01, 20, 20)
        _, state, *_ = step(KEY, state, jnp.array([a]), env.default_params)
        got = [state.phi1, state.phi2, state.omega1, state.omega2]
        reference = [link1.angle, link2.angle, link1.angularVelocity, link2.angularVelocity]
        np.testing.assert_allclose(got, reference, atol=0.05 if t < 6 else 0.2)
