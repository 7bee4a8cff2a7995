#!/usr/bin/env bash
# Issue 15's GPU checks in one go (for a lent GPU machine with JAX, torch and numpy installed; SPAMS
# as a wheel when the machine has no network). Logs go to $1 (default: ./gpu_logs).
#
#     bash benchmarks/gpu_suite.sh OUT_DIR
#
# 1. solvers.py at the default size (4096 x 64 x 256), 2. sweep.py (8 seeds vmapped vs one after
# another), 3. gpu_kernels.py (per-kernel times of both, homotopy schedules), 4. solvers.py at SAE
# scale (65536 signals x 768 features x 16384 atoms; SPAMS float64 is the reference optimum, no
# scikit-learn). Each part has its own time limit so one slow part cannot
# take the others' logs with it.
#
# Issue 15 asks for three runs of each ratio: SWEEP_RUNS=3 repeats part 2 (logs sweep_1.txt ..), and
# SKIP_DEFAULT, SKIP_KERNELS, SKIP_SAE_SCALE (any value) leave parts 1, 3, 4 out, e.g.
#     SWEEP_RUNS=3 SKIP_KERNELS=1 SKIP_SAE_SCALE=1 bash benchmarks/gpu_suite.sh OUT_DIR
set -u
out=${1:-gpu_logs}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ! python3 -c "import jaxsparse.experiments" 2>/dev/null; then  # not installed: build it (no deps, no network)
    python3 -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/jaxsparse_site . || exit 1
    export PYTHONPATH="/tmp/jaxsparse_site${PYTHONPATH:+:$PYTHONPATH}"
fi
cd benchmarks
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
python3 -c "import jax, numpy; print('jax', jax.__version__, jax.devices(), 'numpy', numpy.__version__)" | tee -a "$out/device.txt"
python3 -c "import os; print('cpus', os.cpu_count())" | tee -a "$out/device.txt"
[ -n "${SKIP_DEFAULT:-}" ] || timeout 120 python3 solvers.py --quick 2>&1 | tee "$out/solvers_default.txt"
runs=${SWEEP_RUNS:-1}
for r in $(seq "$runs"); do
    log="$out/sweep.txt"
    [ "$runs" -eq 1 ] || log="$out/sweep_$r.txt"
    timeout 240 python3 sweep.py --repeats 2 2>&1 | tee "$log"
done
[ -n "${SKIP_KERNELS:-}" ] || timeout 150 python3 gpu_kernels.py 2>&1 | tee "$out/kernels.txt"
[ -n "${SKIP_SAE_SCALE:-}" ] || XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 timeout "${SAE_SCALE_LIMIT:-300}" python3 solvers.py \
    --batch 65536 --features 768 --latents 16384 --no-sklearn --repeats 1 --max-iter 320 --max-active 32 \
    --spams-tries 0 2>&1 | tee "$out/solvers_sae_scale.txt"
