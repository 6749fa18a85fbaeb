"""CMA-ES: evosax 0.3.2 (what ``surrogate.algos.cmaes`` runs inside ``jit``) against the ``cma`` 4.5.0 package
(Hansen's pycma, a newer version of the library rllab vendored as ``algos/cma_es_lib.py``).

1. Convergence (``convergence``): both from x0 = 0 with the same population (CMA's default lambda = 10 at
   N = 10) and sigma0 0.5, on the 10-D shifted sphere sum (x - 1)^2 and Rosenbrock, ``--seeds`` seeds each:
   generations (and evaluations) until the best f < 1e-8, and the best f within the budget. evosax runs
   in float32 (its default), cma in float64.
2. Cost of one generation (``generation_cost``): ask + tell (+ a sphere evaluation, negligible) at the
   population sizes rllab uses: N = 10, and N = 6851, the 100-50-25 tanh policy on a 4-D observation and
   1-D action (lambda = 4 + floor(3 ln N) = 30). Variants: ``evosax_full``, evosax's CMA-ES as it is (an
   O(N^3) eigendecomposition of C in every ``ask``; our ``LazyCMA_ES`` with ``eigen_every=1``);
   ``ours_full``, ``cmaes.LazyCMA_ES`` (the decomposition every ``ceil(1 / (10 N (c_1 + c_mu)))``
   generations, Hansen's tutorial B.2, as cma does); ``evosax_diagonal``, Sep-CMA-ES (O(N)); ``cma_full``
   (its ``lazy_update_gap``, the same interval) and ``cma_diagonal`` (``CMA_diagonal``). The lazy variants
   are timed over interval + 2 generations, so one decomposition is included (at N = 10 the interval is 1).
   evosax: one compiled ``lax.scan`` over the generations (compile excluded); cma: its ask/tell loop in
   Python.
   ``covariance_mib``: the N x N matrices each keeps (evosax C and B in float32; cma C and B in float64).
3. ``measure_cmaes_speed``: candidates/s of a CMA-ES run on a policy, ours (``cmaes.ALGO``'s whole
   run as one jitted program: population evaluation, tell and ask inside ``lax.scan``) against ``cma``
   asking the candidates and telling their returns while OUR jitted population evaluation
   (``runtime.iteration.population_episodes``, the same episodes) scores them. ``eval_only``: the same
   evaluations with no search at all, the ceiling for both. ``speedup_vs_cma`` = ours / cma.

On a machine shared with other work, set OPENBLAS_NUM_THREADS=1 (recorded in the results): numpy's and
jaxlib's LAPACK calls (cma's and evosax's ``eigh``) go through OpenBLAS, whose threads then spin against the
other processes (a 100 x 100 ``eigh`` took 0.2 s instead of 1 ms here, at a load of 7 on 2 cores).

  python benchmarks/cmaes_check.py                              # all three; minutes (N = 6851 full CMA)
  python benchmarks/cmaes_check.py --quick --out /tmp/c.json    # smoke test, tiny sizes
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import surrogate  # noqa: E402,F401  (first: sets the host device count before jax is imported)
import cma  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from common import RESULTS, time_whole_run, write_result  # noqa: E402
from surrogate import envs  # noqa: E402
from surrogate.algos import cmaes  # noqa: E402
from surrogate.runtime.iteration import population_episodes, spec_of  # noqa: E402

POLICY_N = (4 + 1) * 100 + (100 + 1) * 50 + (50 + 1) * 25 + (25 + 1) * 1  # 100-50-25 policy, 4-D obs, 1-D action
TARGET = 1e-8


def sphere(x, xp=jnp):
    return xp.sum(xp.square(x - 1.0))


def rosenbrock(x, xp=jnp):
    return xp.sum(100.0 * xp.square(x[1:] - xp.square(x[:-1])) + xp.square(1.0 - x[:-1]))


def cma_strategy(n: int, lam: int, sigma0: float, seed: int, diagonal: bool = False, **opts):
    """``cma.CMAEvolutionStrategy`` from 0 with population ``lam``; quiet, no file output."""
    return cma.CMAEvolutionStrategy(np.zeros(n), sigma0, {"popsize": lam, "seed": seed + 1, "verbose": -9,
                                                         "verb_log": 0, "CMA_diagonal": diagonal, **opts})


def first_below(best, target=TARGET):
    """1-based generation at which ``best`` (best f so far per generation) first drops below ``target``."""
    hit = np.flatnonzero(np.asarray(best) < target)
    return int(hit[0]) + 1 if hit.size else None


# ----------------------------------------------------------------------------- 1. convergence


def evosax_convergence(f, n: int, lam: int, sigma0: float, generations: int, seeds: int) -> list:
    run = jax.jit(jax.vmap(lambda k: cmaes.minimize(f, jnp.zeros(n), sigma0, generations, k, lam)[1]))
    fs = np.asarray(run(jax.random.split(jax.random.PRNGKey(0), seeds)))
    return [np.minimum.accumulate(row) for row in fs]


def cma_convergence(f, n: int, lam: int, sigma0: float, generations: int, seeds: int) -> list:
    out = []
    for s in range(seeds):
        es, best = cma_strategy(n, lam, sigma0, s, ftarget=TARGET, maxiter=generations), []
        while not es.stop():
            x = es.ask()
            fx = [float(f(np.asarray(xi), np)) for xi in x]
            es.tell(x, fx)
            best.append(min(fx) if not best else min(best[-1], min(fx)))
        out.append(np.array(best))
    return out


def convergence(seeds: int, budgets: dict, n: int = 10, sigma0: float = 0.5) -> dict:
    lam, out = cmaes.default_population_size(n), {}
    for name, f in (("sphere", sphere), ("rosenbrock", rosenbrock)):
        for impl, run in (("evosax", evosax_convergence), ("cma", cma_convergence)):
            traces = run(f, n, lam, sigma0, budgets[name], seeds)
            gens = [first_below(t) for t in traces]
            solved = [g for g in gens if g is not None]
            out[f"{name}_{impl}"] = {
                "generations_to_1e-8": gens, "solved": f"{len(solved)}/{seeds}",
                "median_evaluations_to_1e-8": float(np.median(solved)) * lam if solved else None,
                "best_f": [float(t[-1]) for t in traces], "budget_generations": budgets[name]}
    return {"convergence": out, "convergence_setting": {"n": n, "population": lam, "sigma0": sigma0, "x0": 0.0,
                                                        "seeds": seeds, "target": TARGET}}


# ----------------------------------------------------------------------------- 2. cost of one generation


def evosax_generation_s(n: int, lam: int, generations: int | None, covariance: str, eigen_every: int = 0):
    """Seconds per generation of one compiled ``lax.scan`` (compile excluded), and the generations timed;
    ``generations`` None: the eigendecomposition interval + 2 (one decomposition after the first)."""
    es, _ = cmaes.make_strategy(n, lam, 0.5, covariance, eigen_every)
    generations = generations or getattr(es, "interval", 1) + 2
    run = jax.jit(lambda k: cmaes.minimize(sphere, jnp.zeros(n), 0.5, generations, k, lam, covariance,
                                           eigen_every)[1])
    compiled = run.lower(jax.random.PRNGKey(0)).compile()
    t = time.perf_counter()
    jax.block_until_ready(compiled(jax.random.PRNGKey(1)))
    return (time.perf_counter() - t) / generations, generations


def cma_generation_s(n: int, lam: int, generations: int | None, diagonal: bool) -> tuple:
    """Seconds per generation, cma's lazy update gap, eigendecompositions done while timed; ``generations``
    None: the gap + 2, so that the timed generations include one eigendecomposition."""
    es = cma_strategy(n, lam, 0.5, 0, diagonal, tolfun=0, tolx=0, tolflatfitness=10**9)
    gap = getattr(es.sm, "lazy_update_gap", None)
    generations = generations or int(math.ceil(gap)) + 2
    eigen0 = getattr(es.sm, "count_eigen", 0)
    t = time.perf_counter()
    for _ in range(generations):
        x = es.ask()
        es.tell(x, [float(sphere(xi, np)) for xi in x])
    return (time.perf_counter() - t) / generations, gap, getattr(es.sm, "count_eigen", 0) - eigen0, generations


def generation_cost(dims: list, generations: dict) -> dict:
    """``generations``: per variant, a function of N giving how many generations to time."""
    out = {}
    for n in dims:
        lam, row = cmaes.default_population_size(n), {}
        row["population"] = lam
        for name, cov, every in (("evosax_full", "full", 1), ("ours_full", "full", 0), ("evosax_diagonal", "diagonal", 0)):
            s, g = evosax_generation_s(n, lam, generations[name](n), cov, every)
            row.update({f"{name}_s_per_generation": s, f"{name}_generations_timed": g})
        row["ours_eigen_interval"] = cmaes.make_strategy(n, lam, 0.5)[0].interval
        for cov in ("full", "diagonal"):
            g = generations[f"cma_{cov}"](n)
            s, gap, eig, g = cma_generation_s(n, lam, g, cov == "diagonal")
            row.update({f"cma_{cov}_s_per_generation": s, f"cma_{cov}_generations_timed": g})
            if cov == "full":
                row.update(cma_lazy_update_gap=gap, cma_eigendecompositions_timed=eig)
        row["covariance_mib"] = {"evosax_full": 2 * 4 * n * n / 2**20, "cma_full": 2 * 8 * n * n / 2**20}
        for ours, peer in (("evosax_full", "cma_full"), ("ours_full", "cma_full"), ("evosax_diagonal", "cma_diagonal")):
            row[f"{ours}_vs_{peer}"] = row[f"{peer}_s_per_generation"] / row[f"{ours}_s_per_generation"]
        out[str(n)] = row
    return {"generation_cost": out}


# ----------------------------------------------------------------------------- 3. ours vs cma driving our evaluation


def cma_driving_our_evaluation(cfg, env, seeds: int, generations: int, evaluate, key, per_candidate=False) -> float:
    """Seconds for ``generations`` generations of ``seeds`` independent ``cma`` searches, each generation's
    candidates of all seeds scored by one call of our jitted population evaluation (``per_candidate``: one
    call per candidate, as rllab's sampler plays one rollout per candidate); fitness: the discounted
    return, negated for cma's minimisation."""
    n, lam = cmaes.cem.num_params(cfg, env), cmaes.population_size(cfg, env)
    searches = [cma_strategy(n, lam, cfg.sigma0, s, cfg.covariance == "diagonal", maxiter=generations + 1,
                             tolfun=0, tolx=0, tolflatfitness=10**9) for s in range(seeds)]
    keys = jax.random.split(key, generations)
    t = time.perf_counter()
    for g in range(generations):
        xs = [es.ask() for es in searches]
        x = np.concatenate(xs).astype(np.float32)
        if per_candidate:
            scores = np.array([float(evaluate(x[i:i + 1], k)[0]) for i, k in enumerate(jax.random.split(keys[g], len(x)))])
        else:
            scores = np.asarray(evaluate(x, keys[g]))
        for i, es in enumerate(searches):
            es.tell(xs[i], (-scores[i * lam:(i + 1) * lam]).tolist())
    return time.perf_counter() - t


def measure_cmaes_speed(env_id: str = "CartPole-v1", hidden: tuple = (), population_size: int = 0,
                        generations: int = 20, seeds: int = 1, covariance: str = "full", sigma0: float = 0.5,
                        rounds: int = 3) -> dict:
    """Candidates/s of CMA-ES on ``env_id`` (JAX backend): ours (the whole run as one compiled program,
    seeds vmapped and sharded) vs ``cma`` 4.5.0 asking and telling while our jitted population evaluation
    scores the same number of candidates (one call per generation for all seeds' candidates). Each side:
    ``rounds`` timed runs after a warm-up (compile excluded); the fastest counts. ``speedup_vs_cma`` =
    ours / cma; ``eval_only_candidates_per_s`` is the evaluation alone (no search), the ceiling of both
    sides. ``speedup_vs_cma_one_call_per_candidate``: against cma evaluating each candidate by its own call
    (rllab's one rollout per candidate), a weaker peer."""
    env = envs.make(env_id)
    cfg = cmaes.Config(env=env_id, iterations=generations, population_size=population_size, hidden=tuple(hidden),
                       sigma0=sigma0, covariance=covariance).validate()
    lam = cmaes.population_size(cfg, env)
    candidates = seeds * lam * generations
    ours = time_whole_run(cmaes.ALGO, cfg, env, seeds, rounds)
    spec, act = spec_of(cmaes.ALGO, cfg, env), cmaes.ALGO.act(cfg, env, False)
    evaluate = jax.jit(lambda p, k: population_episodes(cmaes.ALGO, cfg, env, spec, act, p, k).discounted_returns)
    population = np.zeros((seeds * lam, cmaes.cem.num_params(cfg, env)), np.float32)
    jax.block_until_ready((evaluate(population, jax.random.PRNGKey(0)), evaluate(population[:1], jax.random.PRNGKey(0))))
    peer, one_by_one, alone = [], [], []  # (compiled above: a whole batch, and one candidate)
    for r in range(rounds):
        peer.append(cma_driving_our_evaluation(cfg, env, seeds, generations, evaluate, jax.random.PRNGKey(r)))
        one_by_one.append(cma_driving_our_evaluation(cfg, env, seeds, generations, evaluate, jax.random.PRNGKey(r),
                                                     per_candidate=True))
        t = time.perf_counter()
        for k in jax.random.split(jax.random.PRNGKey(100 + r), generations):
            jax.block_until_ready(evaluate(population, k))
        alone.append(time.perf_counter() - t)
    ours_s = min(ours["times"][1:])
    return {"speedup_vs_cma": min(peer) / ours_s, "ours_candidates_per_s": candidates / ours_s,
            "cma_candidates_per_s": candidates / min(peer), "eval_only_candidates_per_s": candidates / min(alone),
            "speedup_vs_cma_one_call_per_candidate": min(one_by_one) / ours_s,
            "ours_compile_s": ours["compile_s"], "speed_setting": {
                "env": env_id, "hidden": list(hidden), "num_params": cmaes.cem.num_params(cfg, env),
                "population": lam, "generations": generations, "seeds": seeds, "covariance": covariance,
                "horizon": env.max_episode_steps, "rounds": rounds}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    p.add_argument("--seeds", type=int, default=None, help="seeds of the convergence runs (default 10; quick 3)")
    p.add_argument("--large-dim", type=int, default=None,
                   help=f"the large N of the cost of a generation (default {POLICY_N}; quick 300)")
    p.add_argument("--out", default=str(RESULTS / "cmaes_check.json"))
    a = p.parse_args()
    quick = a.quick
    seeds = a.seeds or (3 if quick else 10)
    large = a.large_dim or (300 if quick else POLICY_N)
    budgets = {"sphere": 300, "rosenbrock": 1000 if quick else 1500}
    small = lambda n: n <= 100  # None: the lazy eigendecomposition's interval + 2 (one decomposition timed)
    generations = {"evosax_full": lambda n: 500 if small(n) else 2,
                   "ours_full": lambda n: 500 if small(n) else None,
                   "evosax_diagonal": lambda n: 500 if small(n) else 20,
                   "cma_full": lambda n: 500 if small(n) else None,
                   "cma_diagonal": lambda n: 500 if small(n) else 20}
    if quick:
        generations = {k: (lambda f: lambda n: f(n) and min(f(n), 50))(f) for k, f in generations.items()}
    figures = {"quick": quick, "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
               **convergence(seeds, budgets), **generation_cost([10, large], generations)}
    speed = measure_cmaes_speed(generations=3 if quick else 20, rounds=2 if quick else 5)
    figures["speed_cartpole_linear"] = speed
    out = write_result(Path(a.out), figures, {"evosax": "0.3.2", "cma": cma.__version__})
    for name, row in out["convergence"].items():
        print(f"{name:22s} solved {row['solved']}, median evaluations {row['median_evaluations_to_1e-8']}, "
              f"worst best f {max(row['best_f']):.3g}")
    for n, row in out["generation_cost"].items():
        print(f"N={n}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items() if k.endswith("per_generation")))
    print({k: v for k, v in speed.items() if k != "speed_setting"})


if __name__ == "__main__":
    main()
