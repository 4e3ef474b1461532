#!/usr/bin/env bash
# One device call (<= 10 minutes) for the next lent GPU (issue 18: what is still unmeasured):
#   1. the CUDA suite alone (benchmarks/gpu_check.sh part "suite"; 6 processes, T_SUITE s each):
#      is it green now that the 8 failures of 2026-12-04 are fixed in the tests (CPU-checked only)?
#   2. notebook 06's default grid on the GPU, alone (part "nb06", T_NB06 s): item 4's goal <= 2 min.
# If device time is left after it, a second call with SESSION=bench (about 100 s in 2026-12-04, plus
# two compiles of the loss now: T_BENCH 300 s) measures the source's end-to-end rate with its set-up,
# first batch and steady state apart (bench.py since 2026-12-04; the first session's 8,165 frames/s
# held the set-up over only 12 batches), and the step ratio with the D-CAT loss under torch.compile
# inside the CUDA graph (goal 3: 1.25x with graphs alone).
# SESSION=controls runs the first session's plan instead (bench, suite + e2e beside the controls at
# full size, sweep speed-up); measured on an H200 (2026-12-04): bench 99 s, suite + e2e 203 s (two of
# the six pytest processes hit their 200 s limit beside the controls), controls at the default size
# did not finish in 230 s, and the sweep step was cut by the 590 s limit.
# Everything lands in /tmp/gpu_session and is packed into $OUT/gpu_session.tgz after each step
# (the device tool brings back at most 8 files), so a timeout still returns what finished.
set -u
cd "$(dirname "$0")/.."
FINAL=${OUT:?set OUT to the folder that comes back}
W=${GPU_SESSION_DIR:-/tmp/gpu_session}
mkdir -p "$W"
# Packed to a temporary name, then renamed: a pack cut by the call's time limit must not replace the
# last complete one (the first session's only archive came back truncated that way).
pack() { tar -C "$W" --exclude='dcatkit_cache' --exclude='pytest_tmp_*' --exclude='*.pt' \
             --exclude='controls_runs_store' --exclude='outputs' -czf "$W.tgz.part" . \
             && mv "$W.tgz.part" "$FINAL/gpu_session.tgz";
         cp "$W/summary.txt" "$FINAL/" 2>/dev/null; true; }
export OUT=$W
if [ "${SESSION:-next}" = next ]; then
    GPU_CHECK_PARTS="suite" T_SUITE=${T_SUITE:-250} bash benchmarks/gpu_check.sh; pack
    GPU_CHECK_PARTS="nb06" T_NB06=${T_NB06:-280} bash benchmarks/gpu_check.sh; pack
    exit 0
fi
if [ "${SESSION}" = bench ]; then
    GPU_CHECK_PARTS="bench" T_BENCH=${T_BENCH:-300} bash benchmarks/gpu_check.sh; pack
    exit 0
fi
CONTROLS=${CONTROLS_ARGS:---seeds 10 --draws 3 --sizes 40 --curve-source-labels all --workers 8}
GPU_CHECK_PARTS="bench" bash benchmarks/gpu_check.sh; pack
( PYTHONPATH=. timeout -k 10 ${T_CONTROLS:-230} python benchmarks/controls.py $CONTROLS --device cuda \
      --runs-dir "$W/controls_runs_store" --out "$W/controls" > "$W/controls.log" 2>&1
  echo "controls rc=$?" >> "$W/summary.txt" ) &
GPU_CHECK_PARTS="suite e2e" bash benchmarks/gpu_check.sh; pack
wait; pack
GPU_CHECK_PARTS="sweep" bash benchmarks/gpu_check.sh; pack
rm -rf "$W/controls_runs_store"; pack
