#!/usr/bin/env bash
# One device call (<= 10 minutes) that runs every GPU measurement of a session:
#   1. bench --only paper, alone on the GPU (timings);
#   2. the CUDA suite and the paper-scale end to end (benchmarks/gpu_check.sh parts "suite e2e")
#      beside benchmarks/controls.py at full size (controls and positive control, 3 data draws);
#   3. the sweep speed-up (1 worker vs 8), alone.
# Everything lands in /tmp/gpu_session and is packed into $OUT/gpu_session.tgz after each step
# (the device tool brings back at most 8 files), so a timeout still returns what finished.
# Measured on an H200 (2026-12-04): bench 99 s, suite + e2e 203 s (two of the six pytest processes hit
# their 200 s limit beside the controls), controls at the default size did not finish in 230 s, and the
# sweep step was cut by the 590 s limit: give controls a call of their own or fewer draws.
set -u
cd "$(dirname "$0")/.."
FINAL=${OUT:?set OUT to the folder that comes back}
W=${GPU_SESSION_DIR:-/tmp/gpu_session}
mkdir -p "$W"
# Packed to a temporary name, then renamed: a pack cut by the call's time limit must not replace the
# last complete one (the first session's only archive came back truncated that way).
pack() { tar -C "$W" --exclude='dcatkit_cache' --exclude='pytest_tmp_*' --exclude='*.pt' \
             --exclude='controls_runs_store' -czf "$W.tgz.part" . && mv "$W.tgz.part" "$FINAL/gpu_session.tgz";
         cp "$W/summary.txt" "$FINAL/" 2>/dev/null; true; }
export OUT=$W
CONTROLS=${CONTROLS_ARGS:---seeds 10 --draws 3 --sizes 40 --curve-source-labels all --workers 8}
GPU_CHECK_PARTS="bench" bash benchmarks/gpu_check.sh; pack
( PYTHONPATH=. timeout -k 10 ${T_CONTROLS:-230} python benchmarks/controls.py $CONTROLS --device cuda \
      --runs-dir "$W/controls_runs_store" --out "$W/controls" > "$W/controls.log" 2>&1
  echo "controls rc=$?" >> "$W/summary.txt" ) &
GPU_CHECK_PARTS="suite e2e" bash benchmarks/gpu_check.sh; pack
wait; pack
GPU_CHECK_PARTS="sweep" bash benchmarks/gpu_check.sh; pack
rm -rf "$W/controls_runs_store"; pack
