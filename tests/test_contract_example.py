"""The README's example of a new algorithm (examples/reinforce.py) runs through the contract and learns."""
import importlib.util
from pathlib import Path

import jax
import numpy as np

from surrogate import envs

ROOT = Path(__file__).resolve().parents[1]


def test_readme_shows_the_example_and_it_learns_on_both_backends():
    source = (ROOT / "examples" / "reinforce.py").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "examples/reinforce.py" in readme and source.strip() in readme  # the README shows the file verbatim
    assert len(source.splitlines()) <= 60
    spec = importlib.util.spec_from_file_location("reinforce_example", ROOT / "examples" / "reinforce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    algo, config = module.REINFORCE, module.Config(total_steps=40_000)
    for env_id, seeds in (("CartPole-v1", 2), ("gym:CartPole-v1", 1)):
        env = envs.make(env_id)
        result = algo.train(config if env_id == "CartPole-v1" else module.Config(env=env_id, total_steps=24_000),
                            env, jax.random.PRNGKey(0), seeds=seeds)
        h = result.history
        curve = h["episode_return_sum"] / np.maximum(h["episode_count"], 1)
        assert curve.shape[0] == seeds and np.isfinite(h["loss"]).all()
        assert curve[:, -5:].mean() > 1.5 * curve[:, :5].mean(), curve  # a random linear policy scores ~20-25
    final = algo.evaluate(config, envs.make("CartPole-v1"), *algo.seed_policy(config, result, 0),
                          jax.random.PRNGKey(1), 5)
    assert final.shape == (5,)
