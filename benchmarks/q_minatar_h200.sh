#!/bin/bash
# MinAtar learning runs on a lent GPU (this workplace's `device` tool: one H200, jax 0.11.2 with CUDA in its
# image, Python 3.12). Six runs of benchmarks/q_minatar.py side by side, one process each: the two Q-ensembles
# on the four games at 500k frames per seed, bootstrapped DQN's Freeway, and DQN's Freeway up to 5M frames
# (--until-anchor). Each writes its result file after every chunk into $OUT/res, so a run cut off at the
# time limit keeps its finished chunks; no checkpoints (the machine is given back after the call).
#
# Packages the image lacks travel as wheels in .whl (gymnax 1.0.1, gymnasium 1.3.0, farama-notifications,
# ale-py 0.12.1, cp312); jax, flax, optax and chex are the image's. Called as
#   run(command="bash benchmarks/q_minatar_h200.sh", carry=[".whl"], timeout_s=600)
# Locally, a smoke test: PY=.venv/bin/python SKIP_PIP=1 UCB_FRAMES=2000 DQN_FRAMES=2000 CHUNK=1000 OUT=/tmp/o bash $0
set -u
PY=${PY:-python3}
OUT=${OUT:-/tmp/q_minatar_h200}
LIMIT=${LIMIT:-550}             # seconds per run; the call's limit is 600
UCB_FRAMES=${UCB_FRAMES:-500000}
DQN_FRAMES=${DQN_FRAMES:-5000000}
CHUNK=${CHUNK:-100000}
if [ -z "${SKIP_PIP:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.12
RES=$OUT/res LOGS=/tmp/q_minatar_h200_logs
mkdir -p "$RES" "$LOGS"
nvidia-smi -L 2>/dev/null
$PY -c "import jax, flax, optax, gymnax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"

q() {  # name, then q_minatar.py's arguments
  local name=$1; shift
  timeout -s INT "$LIMIT" $PY benchmarks/q_minatar.py --out-dir "$RES" --checkpoint-dir "" --until-anchor "$@" \
    > "$LOGS/$name.log" 2>&1 &
}
for g in Breakout SpaceInvaders Asterix Freeway; do
  q "ucb_$g" --algos ensemble_ucb --games $g --frames "$UCB_FRAMES" --chunk-frames "$CHUNK"
done
q boot_Freeway --algos bootstrapped_dqn --games Freeway --frames "$UCB_FRAMES" --chunk-frames "$CHUNK"
q dqn_Freeway --algos dqn --games Freeway --frames "$DQN_FRAMES" --chunk-frames "$CHUNK"
wait
for f in "$LOGS"/*.log; do echo "== $f"; cat "$f"; done > "$OUT/log.txt"
for f in "$LOGS"/*.log; do echo "== $f"; grep -v "^\s*$" "$f" | tail -n 4; done
ls -la "$RES"
