"""RL²'s tabular-MDP baselines on cases with known answers."""
import numpy as np
import pytest
from scipy.optimize import linprog

from surrogate.errors import ConfigError
from surrogate.rl2.mdp_baselines import (MDP_BASELINES, Stats, backward_induction, draw_mdps, empty_stats,
                                         episode_returns, evaluate_mdp_baselines, extended_value_iteration,
                                         optimistic_transitions, posterior, sample_mdps, update_stats)


def test_draw_mdps_follows_the_paper():
    means, transitions = draw_mdps(np.random.default_rng(0), 400)
    assert means.shape == (400, 10, 5) and transitions.shape == (400, 10, 5, 10)
    np.testing.assert_allclose(transitions.sum(-1), 1.0)
    assert abs(means.mean() - 1.0) < 0.02 and abs(means.std() - 1.0) < 0.02  # N(1, 1)
    assert abs(transitions[..., 0].mean() - 0.1) < 0.003  # flat Dirichlet: marginal Beta(1, 9), mean 1/10
    assert abs(transitions[..., 0].var() - 9 / (100 * 11)) < 0.0008  # and variance 9 / (10^2 * 11)


def test_backward_induction_on_a_hand_made_mdp():
    # state 0: action 0 stays (reward 1), action 1 moves to state 1 (reward 0); state 1: both stay, reward 2.
    rewards = np.array([[1.0, 0.0], [2.0, 2.0]])
    transitions = np.zeros((2, 2, 2))
    transitions[0, 0, 0] = transitions[0, 1, 1] = transitions[1, :, 1] = 1.0
    q = backward_induction(rewards, transitions, 3)
    # by hand: V_3 = 0; V_2 = (1, 2); Q_1(0) = (1 + 1, 0 + 2) -> V_1 = (2, 4); Q_0(0) = (1 + 2, 0 + 4) = (3, 4)
    np.testing.assert_allclose(q[2], [[1, 0], [2, 2]])
    np.testing.assert_allclose(q[1], [[2, 2], [4, 4]])
    np.testing.assert_allclose(q[0], [[3, 4], [6, 6]])
    stochastic = transitions.copy()
    stochastic[0, 1] = [0.5, 0.5]  # moving now succeeds half the time: Q_0(0, 1) = 0 + (V_1(0) + V_1(1)) / 2
    q = backward_induction(rewards, stochastic, 3)
    v1 = q[1].max(-1)
    np.testing.assert_allclose(q[0, 0, 1], 0.5 * (v1[0] + v1[1]))


def test_posterior_update_matches_the_closed_form():
    stats = empty_stats(1, 2, 2)
    for s, a, r, s2 in [(0, 1, 2.0, 1), (0, 1, 0.5, 1), (0, 1, 3.0, 0), (1, 0, -1.0, 1)]:
        update_stats(stats, np.array([s]), np.array([a]), np.array([r]), np.array([s2]))
    mean, var, alpha = posterior(stats)
    # Normal prior N(0, 1), unit noise: precision 1 + n, mean (0 + sum r) / (1 + n)
    assert mean[0, 0, 1] == pytest.approx(5.5 / 4) and var[0, 0, 1] == pytest.approx(1 / 4)
    assert mean[0, 1, 0] == pytest.approx(-0.5) and var[0, 1, 0] == pytest.approx(1 / 2)
    assert mean[0, 0, 0] == pytest.approx(0.0) and var[0, 0, 0] == pytest.approx(1.0)  # unvisited: the prior
    assert posterior(stats, prior_mean=1.0)[0][0, 0, 1] == pytest.approx((1 + 5.5) / 4)  # the generator's prior
    np.testing.assert_array_equal(alpha[0, 0, 1], [2, 3])  # Dirichlet(1 + counts)
    np.testing.assert_array_equal(alpha[0, 1, 1], [1, 1])
    # PSRL's samples have these moments
    many = Stats(*(np.repeat(x, 20000, axis=0) for x in stats))
    rewards, transitions = sample_mdps(many, np.random.default_rng(0))
    assert rewards[:, 0, 1].mean() == pytest.approx(1.375, abs=0.02)
    assert rewards[:, 0, 1].var() == pytest.approx(0.25, abs=0.01)
    assert transitions[:, 0, 1, 1].mean() == pytest.approx(3 / 5, abs=0.01)  # Dirichlet(2, 3) mean


def _lp_optimum(p_hat, width, v):
    """max p.v s.t. p >= 0, sum p = 1, ||p - p_hat||_1 <= width, as an LP over (p, u) with u >= |p - p_hat|."""
    n = len(v)
    eye = np.eye(n)
    a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, n)), np.ones((1, n))]])
    b_ub = np.concatenate([p_hat, -p_hat, [width]])
    res = linprog(np.concatenate([-v, np.zeros(n)]), A_ub=a_ub, b_ub=b_ub,
                  A_eq=np.concatenate([np.ones(n), np.zeros(n)])[None], b_eq=[1.0], bounds=[(0, None)] * (2 * n))
    return -res.fun


def test_ucrl2_inner_maximisation_solves_the_lp():
    rng = np.random.default_rng(1)
    p_hat = rng.dirichlet(np.ones(6), size=(1, 4, 3))
    width = np.array([[[0.0, 0.1, 0.3], [0.7, 1.2, 2.0], [0.05, 0.5, 1.0], [0.2, 0.4, 3.0]]])
    v = rng.normal(size=(1, 6))
    p = optimistic_transitions(p_hat, width, v)
    assert (p >= -1e-12).all()
    np.testing.assert_allclose(p.sum(-1), 1.0)
    assert (np.abs(p - p_hat).sum(-1) <= width + 1e-9).all()
    for s in range(4):
        for a in range(3):
            assert p[0, s, a] @ v[0] == pytest.approx(_lp_optimum(p_hat[0, s, a], width[0, s, a], v[0]), abs=1e-7)


def test_extended_value_iteration_is_optimistic():
    rng = np.random.default_rng(2)
    means, transitions = draw_mdps(rng, 50, 6, 3)
    visits = rng.integers(1, 30, size=means.shape)
    p_hat = np.stack([rng.multinomial(n, p) / n for n, p in zip(visits.ravel(), transitions.reshape(-1, 6))])
    p_hat = p_hat.reshape(transitions.shape)
    r_hat = means + rng.normal(size=means.shape) / np.sqrt(visits)
    # confidence sets that contain the true MDP (just)
    r_width = np.abs(r_hat - means) + 1e-6
    p_width = np.abs(p_hat - transitions).sum(-1) + 1e-6
    optimistic = extended_value_iteration(r_hat, r_width, p_hat, p_width, 10)[:, 0].max(-1)
    true = backward_induction(means, transitions, 10)[:, 0].max(-1)
    assert (optimistic >= true - 1e-9).all()
    assert (optimistic > true + 1e-3).mean() > 0.9  # and strictly above where the sets are not tight
    exact = extended_value_iteration(means, np.zeros_like(means), transitions, np.zeros(means.shape), 10)
    np.testing.assert_allclose(exact, backward_induction(means, transitions, 10))  # zero width: plain VI


def test_random_total_equals_its_expectation():
    means, transitions = draw_mdps(np.random.default_rng(3), 1, 4, 3)
    copies = 4000
    tiled = np.repeat(means, copies, 0), np.repeat(transitions, copies, 0)
    totals = MDP_BASELINES["random"](*tiled, 5, 10, np.random.default_rng(4))
    # exact: the state distribution under uniform actions, d_{h+1} = d_h mean_a P, return sum_h d_h . mean_a R
    d, expected = np.eye(4)[0], 0.0
    for _ in range(10):
        expected += d @ means[0].mean(-1)
        d = d @ transitions[0].mean(1)
    assert abs(totals.mean() - 5 * expected) < 4 * totals.std() / np.sqrt(copies)
    paper = MDP_BASELINES["random"](*draw_mdps(np.random.default_rng(5), 2000), 10, 10, np.random.default_rng(6))
    assert abs(paper.mean() - 100.0) < 4 * paper.std() / np.sqrt(2000)  # n H E[mean reward] = 10 * 10 * 1


@pytest.fixture(scope="module")
def deterministic():
    # state 0: action 0 stays (-2), action 1 moves to state 1 (+3); state 1: action 0 stays (+4), action 1 back (-2)
    means = np.array([[[-2.0, 3.0], [4.0, -2.0]]])
    transitions = np.zeros((1, 2, 2, 2))
    transitions[0, 0, 0, 0] = transitions[0, 0, 1, 1] = transitions[0, 1, 0, 1] = transitions[0, 1, 1, 0] = 1.0
    optimum = backward_induction(means[0], transitions[0], 10)[0, 0].max()
    assert optimum == 3 + 9 * 4
    return np.repeat(means, 100, 0), np.repeat(transitions, 100, 0), optimum


@pytest.mark.parametrize("name", ["greedy", "psrl", "beb", "ucrl2"])
def test_learners_reach_the_optimal_return(deterministic, name):
    means, transitions, optimum = deterministic
    returns = episode_returns(name, means, transitions, 30, 10, np.random.default_rng(7))
    late = returns[:, -5:].mean()
    assert abs(late - optimum) < 5 * np.sqrt(10 / returns[:, -5:].size)  # unit-variance rewards: noise only
    assert returns[:, 0].mean() < optimum - 5  # and it did have to learn


def test_opsrl_with_one_sample_is_psrl_and_beb_without_bonus_is_greedy():
    means, transitions = draw_mdps(np.random.default_rng(8), 30)
    psrl = MDP_BASELINES["psrl"](means, transitions, 3, 10, np.random.default_rng(9))
    opsrl = MDP_BASELINES["opsrl"](means, transitions, 3, 10, np.random.default_rng(9), num_samples=1)
    np.testing.assert_allclose(opsrl, psrl)
    greedy = MDP_BASELINES["greedy"](means, transitions, 3, 10, np.random.default_rng(9))
    beb = MDP_BASELINES["beb"](means, transitions, 3, 10, np.random.default_rng(9), beta=0.0)
    np.testing.assert_allclose(beb, greedy)
    informed = MDP_BASELINES["greedy"](means, transitions, 3, 10, np.random.default_rng(9), prior_mean=1.0)
    assert not np.allclose(informed, greedy)  # the prior reaches the planner


def test_evaluate_tunes_on_separate_instances_and_reports_every_method():
    means, transitions = draw_mdps(np.random.default_rng(10), 20, 4, 2)
    out = evaluate_mdp_baselines(means, transitions, 2, 5, seed=0, tuning_instances=10)
    assert set(out) == set(MDP_BASELINES)
    assert out["ucrl2"][2].keys() == {"scale"} and out["greedy"][2] == {}
    assert all(np.isfinite(m) and se > 0 for m, se, _ in out.values())
    assert out == evaluate_mdp_baselines(means, transitions, 2, 5, seed=0, tuning_instances=10)  # deterministic


def test_bad_input_raises_config_error():
    means, transitions = draw_mdps(np.random.default_rng(0), 2)
    with pytest.raises(ConfigError, match="Unknown MDP baseline"):
        episode_returns("rmax", means, transitions, 1, 10, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="takes hyperparameters"):
        MDP_BASELINES["psrl"](means, transitions, 1, 10, np.random.default_rng(0), beta=1.0)
    with pytest.raises(ConfigError, match="takes hyperparameters"):
        MDP_BASELINES["ucrl2"](means, transitions, 1, 10, np.random.default_rng(0), prior_mean=1.0)
    with pytest.raises(ConfigError, match="epsilon"):
        MDP_BASELINES["eps_greedy"](means, transitions, 1, 10, np.random.default_rng(0), epsilon=1.5)
    with pytest.raises(ConfigError, match="transitions"):
        MDP_BASELINES["greedy"](means, transitions[:, :3], 1, 10, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="n_episodes"):
        MDP_BASELINES["random"](means, transitions, 0, 10, np.random.default_rng(0))
