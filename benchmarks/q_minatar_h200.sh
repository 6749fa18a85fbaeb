#!/bin/bash
# MinAtar learning runs on a lent GPU (this workplace's `device` tool: one H200, jax 0.11.2 with CUDA in its
# image, Python 3.12): runs of benchmarks/q_minatar.py side by side, one process each, every one writing
# its result file after each 100k-frame chunk into $OUT/res, so a run cut off at the time limit keeps its
# finished chunks. No checkpoints unless CKPT names a folder (say runs/q_minatar: git-ignored, so it stays on
# the machine while it is warm, and the same call again continues the runs there).
#
# RUNS: space-separated algo:game:frames (default: the 2026-11-30 call's six runs). --until-anchor always
# (it only stops runs that reach MinAtar DQN's 5M-frame value twice in a row).
#
# Packages the image lacks travel as wheels in .whl (gymnax 1.0.1, gymnasium 1.3.0, farama-notifications
# 0.0.6, ale-py 0.12.1, cp312; `pip download` lines in benchmarks/README.md); jax, flax, optax and chex
# are the image's. Called as
#   run(command="bash benchmarks/q_minatar_h200.sh", carry=[".whl"], timeout_s=600)
#   run(command="RUNS='dqn:Freeway:5000000' bash benchmarks/q_minatar_h200.sh", carry=[".whl"], timeout_s=600)
# Locally, a smoke test: PY=.venv/bin/python SKIP_PIP=1 RUNS="dqn:Breakout:2000" CHUNK=1000 OUT=/tmp/o bash $0
set -u
PY=${PY:-python3}
OUT=${OUT:-/tmp/q_minatar_h200}
LIMIT=${LIMIT:-550}             # seconds per run; the call's limit is 600
CHUNK=${CHUNK:-100000}
RUNS=${RUNS:-"ensemble_ucb:Breakout:500000 ensemble_ucb:SpaceInvaders:500000 ensemble_ucb:Asterix:500000
ensemble_ucb:Freeway:500000 bootstrapped_dqn:Freeway:500000 dqn:Freeway:5000000"}
if [ -z "${SKIP_PIP:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.08
RES=$OUT/res LOGS=/tmp/q_minatar_h200_logs
mkdir -p "$RES" "$LOGS"
nvidia-smi -L 2>/dev/null
$PY -c "import jax, flax, optax, gymnax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"

for run in $RUNS; do
  IFS=: read -r algo game frames <<< "$run"
  timeout -s INT "$LIMIT" $PY benchmarks/q_minatar.py --out-dir "$RES" --checkpoint-dir "${CKPT:-}" --until-anchor \
    --algos "$algo" --games "$game" --frames "$frames" --chunk-frames "$CHUNK" > "$LOGS/${algo}_$game.log" 2>&1 &
done
wait
for f in "$LOGS"/*.log; do echo "== $f"; grep -v "RuntimeWarning\|final_return_per_seed=final" "$f"; done > "$OUT/log.txt"
for f in "$LOGS"/*.log; do echo "== $f"; grep -v "^\s*$" "$f" | tail -n 3; done
ls -la "$RES"
