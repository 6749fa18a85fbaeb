# `make demo` and `make test` work from a fresh clone: they create .venv and install
# everything pinned in pyproject.toml. Peers for benchmarks live in .venv-peers.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PEERS := .venv-peers

.PHONY: install demo test test-slow bench bench-peers clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import surrogate, jax, flax, optax, gymnax, gymnasium, mujoco"
	touch $@

demo: install
	$(VENV)/bin/surrogate train ppo --env CartPole-v1 --seeds 4 --total-steps 256000 --name demo --overwrite

# Two processes: XLA:CPU maps memory for every compiled program, and the whole suite in one process ran
# past vm.max_map_count (65530) near its end ("LLVM ERROR: Unable to allocate section memory", SIGABRT).
test: install
	$(PY) -m pytest -q tests/test_[a-q]*.py
	$(PY) -m pytest -q tests/test_[r-z]*.py

test-slow: install
	$(PY) -m pytest -q -m slow

# Peers (torch CPU wheel first, then SB3; rejax needs gymnax 0.0.9) in their own venv.
$(PEERS)/.installed:
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
	$(PEERS)/bin/pip install -q stable-baselines3==2.9.2 sb3-contrib==2.9.2 "gymnasium[mujoco]==1.4.0" mujoco==4.0.0 rejax==0.1.3 gymnax==0.0.9 jax==0.10.2 jaxlib==0.10.2 ale-py==0.12.1 opencv-python-headless==5.0.0.93 torchopt==0.7.3 2>&1 | grep -v "^WARNING: Location" || true
	$(PEERS)/bin/python -c "import torch, stable_baselines3, sb3_contrib, rejax, mujoco, ale_py, cv2, torchopt"
	touch $@

bench-peers: $(PEERS)/.installed

bench: install bench-peers
	$(PY) benchmarks/ppo_cartpole.py --peers-python $(PEERS)/bin/python
	$(PY) benchmarks/ppo_mujoco.py
	$(PY) benchmarks/trpo_speed.py --peers-python $(PEERS)/bin/python
	$(PY) benchmarks/trpo_mujoco.py
	$(PY) benchmarks/gae_lambda.py
	$(PY) benchmarks/readme_tables.py

clean:
	rm -rf $(VENV) $(PEERS) runs
