#!/usr/bin/env bash
# Every GPU measurement of issue 18 and the suite on CUDA, in one run (about 5 minutes on an H200):
#
#   OUT=/path/to/results bash benchmarks/gpu_check.sh        # on the GPU machine, from anywhere
#   GPU_CHECK_DRY=1 OUT=/tmp/gc bash benchmarks/gpu_check.sh # tiny sizes on the CPU: checks the script
#   GPU_CHECK_PARTS="bench e2e" ...                           # a rerun of some parts only
#   GPU_CHECK_BENCH_ARGS=--compile ...                        # the source under torch.compile too (~+1-2 min)
#
# Writes under $OUT: summary.txt (each part's start, end, exit code, seconds), env.txt, and
#   bench.log + bench_paper.json   (b) bench --only paper: source frames/s OLD vs NEW, step ratio
#   suite_N.log + junit_N.xml      (a) the suite on CUDA, 8 pytest processes split by file;
#   suite_summary.txt                  totals and every failure
#   e2e.log + e2e/paper_e2e.json   (d) notebook 03's computation with preset="paper" on a generated
#                                      UESTC-layout fixture (224^2 x 30 frames): epoch times, peak
#                                      GPU memory of source and targets; e2e/03_transfer.log: the
#                                      notebook itself run as its percent script
#   sweep_w1.log, sweep_wN.log     (c) one small sweep grid with 1 worker and with N (speed-up)
#   nb06/06_when_transfer_helps.log (e) notebook 06's default grid (3 draws x 10 seeds, every study)
#   + nb06.log                         as its percent script on the GPU, timed (issue 18 item 4:
#                                      goal <= 2 min); its results under nb06/outputs
# Not `set -e`: every part runs and logs even when another fails; each part runs under `timeout`.
# (b) runs alone (timings); (a) and (d) run side by side (the suite's tiny models barely load the
# GPU; (d)'s epoch times are then an upper bound); (c) runs last, alone. env.txt is written once per
# OUT; bench's lines are appended to summary.txt by the call that ran bench.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
PY=${PY:-python}
DRY=${GPU_CHECK_DRY:-0}
PARTS=" ${GPU_CHECK_PARTS:-bench suite e2e sweep} "      # also: nb06 (not in the default set)
has() { [[ "$PARTS" == *" $1 "* ]]; }
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg PYTHONUNBUFFERED=1
export DCATKIT_CACHE="$OUT/dcatkit_cache"
SUMMARY=$OUT/summary.txt

log() { echo "[$(date +%T)] $*" | tee -a "$SUMMARY"; }
part() {   # part NAME SECONDS COMMAND...: runs COMMAND under timeout, output to $OUT/NAME.log
    local name=$1 limit=$2 t0 rc
    shift 2
    log "start $name (timeout ${limit}s): $*"
    t0=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    log "end   $name rc=$rc ($(($(date +%s) - t0)) s)$([ $rc = 124 ] && echo ' TIMED OUT')"
    return 0
}

if [ "$DRY" = 1 ]; then
    DEVICE=cpu; BENCH_ARGS="--quick --rounds 1"
    E2E_ARGS="--recordings-per-class 3 --rows 80 --size 32 --frames 4 --source-epochs 1 --epochs 1"
    SUITE_FILES="tests/test_metrics.py tests/test_provenance.py tests/test_source_cache.py tests/test_stats.py"
    SWEEP_ARGS="--sizes 100 --seeds 0-1 --epochs-source 1 --epochs-target 1"
    NB06_ARGS=(-p draws=2 -p 'seeds=[0,1]' -p 'sizes=[96]' -p control_size=96 -p 'positive_labels=[10]'
               -p 'curve_labels=[10]' -p 'tune_lams=[1,30]' -p epochs=1 -p source_epochs=1 -p n_frames=4
               -p frame_size=16)
    WORKERS=2; T_BENCH=600; T_SUITE=600; T_E2E=600; T_SWEEP=300; T_NB06=900
else
    DEVICE=cuda; BENCH_ARGS="${GPU_CHECK_BENCH_ARGS:-}"       # e.g. --compile (adds ~1-2 min)
    E2E_ARGS="${GPU_CHECK_E2E_ARGS:-}"
    SUITE_FILES=$(ls tests/test_*.py)
    SWEEP_ARGS="--sizes 300 --seeds 0-3"
    NB06_ARGS=(-p 'device="cuda"')
    WORKERS=8; T_BENCH=${T_BENCH:-180}; T_SUITE=${T_SUITE:-200}; T_E2E=${T_E2E:-200}; T_SWEEP=${T_SWEEP:-50}
    T_NB06=${T_NB06:-300}                                             # worst case 8 min (+5: nb06)
fi

log "gpu_check in $ROOT, OUT=$OUT, dry=$DRY, device=$DEVICE"
# The machine's record, once per OUT: gpu_session.sh calls this script once per step with the same OUT,
# and three records cost ~40 s of the 600 (torch imported, every optional package tried; an estimate)
[ -s "$OUT/env.txt" ] || {
    nvidia-smi 2>&1 | head -20
    $PY -c "import sys, torch, torchvision; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else ''); print('torchvision', torchvision.__version__)"
    for m in papermill nbclient ipykernel jupytext av soundfile ipywidgets IPython PIL; do
        $PY -c "import $m" 2>/dev/null && echo "have $m" || echo "no   $m"
    done
    nproc; free -g | head -2
} >"$OUT/env.txt" 2>&1

# (b) the paper-scale benchmark, alone on the GPU
has bench && part bench "$T_BENCH" $PY benchmarks/bench.py --only paper --json "$OUT/bench_paper.json" $BENCH_ARGS

# (a) the suite on CUDA, 8 processes (files dealt largest first by their CPU time in
# benchmarks/suite_file_seconds.json, measured beside the GPU machine's packages; a file not in it
# counts as the median), beside (d)
has suite || SUITE_FILES=""
NPROC_SUITE=${NPROC_SUITE:-8}
[ -n "$SUITE_FILES" ] && $PY - "$OUT" "$NPROC_SUITE" $SUITE_FILES <<'PYEOF'
import json, os, statistics, sys
out, n, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
try:
    seconds = json.load(open("benchmarks/suite_file_seconds.json"))["seconds"]
except (OSError, ValueError, KeyError):
    seconds = {}
default = statistics.median(seconds.values()) if seconds else 1.0
cost = {f: seconds.get(os.path.basename(f), default) if seconds else os.path.getsize(f) for f in files}
groups, load = [[] for _ in range(n)], [0.0] * n
for f in sorted(files, key=lambda f: -cost[f]):
    i = load.index(min(load))
    groups[i].append(f)
    load[i] += cost[f]
for i, g in enumerate(groups):
    open(f"{out}/suite_files_{i}.txt", "w").write(" ".join(g))
PYEOF
[ -n "$SUITE_FILES" ] && log "start suite ($NPROC_SUITE processes, timeout ${T_SUITE}s each, DCATKIT_TEST_DEVICE=$DEVICE)"
t_suite=$(date +%s)
for i in $(seq 0 $((NPROC_SUITE - 1))); do
    [ -n "$SUITE_FILES" ] || break
    files=$(cat "$OUT/suite_files_$i.txt")
    [ -z "$files" ] && continue
    # SIGINT at the limit: pytest stops like on Ctrl-C and still writes its junit xml and summary;
    # -v prints each test's outcome as it ends, so a killed process's log keeps what it did
    DCATKIT_TEST_DEVICE=$DEVICE OMP_NUM_THREADS=2 timeout -s INT -k 20 "$T_SUITE" \
        $PY -m pytest $files -v --tb=short -rs -p no:cacheprovider --junitxml="$OUT/junit_$i.xml" \
        --basetemp="$OUT/pytest_tmp_$i" >"$OUT/suite_$i.log" 2>&1 &
    eval "suite_pid_$i=$!"
done

# (d) paper scale end to end, while the suite runs
has e2e && part e2e "$T_E2E" $PY benchmarks/paper_e2e.py "$OUT/e2e" --notebook-timeout $((T_E2E - 100)) $E2E_ARGS

for i in $(seq 0 $((NPROC_SUITE - 1))); do
    pid_var="suite_pid_$i"
    [ -n "${!pid_var:-}" ] || continue
    wait "${!pid_var}"
    log "suite_$i rc=$? ($(cat "$OUT/suite_files_$i.txt" | wc -w) files)"
done
[ -n "$SUITE_FILES" ] && log "end   suite ($(($(date +%s) - t_suite)) s)"
[ -n "$SUITE_FILES" ] && $PY - "$OUT" <<'PYEOF' 2>&1 | tee "$OUT/suite_summary.txt" | tee -a "$SUMMARY"
import glob, sys
import xml.etree.ElementTree as ET
out = sys.argv[1]
tot = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
bad, skips = [], {}
for f in sorted(glob.glob(f"{out}/junit_*.xml")):
    for case in ET.parse(f).getroot().iter("testcase"):
        tot["tests"] += 1
        name = f"{case.get('classname')}::{case.get('name')}"
        for kind in ("failure", "error"):
            for e in case.findall(kind):
                tot[kind + "s"] += 1
                bad.append(f"{kind.upper()} {name}: {(e.get('message') or '')[:300]}")
        for e in case.findall("skipped"):
            tot["skipped"] += 1
            msg = (e.get("message") or "")[:160]
            skips[msg] = skips.get(msg, 0) + 1
print("suite:", tot, "passed:", tot["tests"] - tot["failures"] - tot["errors"] - tot["skipped"])
print("\n".join(bad) or "no failures or errors")
print("skips by reason:")
for m, n in sorted(skips.items(), key=lambda x: -x[1]):
    print(f"  {n:3d}  {m}")
PYEOF

# (c) sweeps on one GPU: the same grid with 1 worker, then with $WORKERS
has sweep && for w in 1 "$WORKERS"; do
    part "sweep_w$w" "$T_SWEEP" $PY -m dcatkit sweep --methods none dcat $SWEEP_ARGS --workers "$w" \
        --out "$OUT/sweep_w$w"
done

# (e) notebook 06's default grid on the GPU, alone, timed; workers: the notebook's default (auto per GPU)
has nb06 && part nb06 "$T_NB06" $PY benchmarks/notebook_script.py 06_when_transfer_helps "$OUT/nb06" \
    --timeout $((T_NB06 - 10)) -p "out_dir=\"$OUT/nb06/outputs\"" -p "figures_dir=\"$OUT/nb06/figures\"" \
    "${NB06_ARGS[@]}"

log "done; results in $OUT"
# bench's figures into the summary when bench ran in this call (gpu_session.sh runs this script once per
# step with the same OUT: a bench.log of an earlier step was appended then, and not again)
has bench && [ -f "$OUT/bench.log" ] && grep -E "frames/s|IMU step|failed|Error" "$OUT/bench.log" | tee -a "$SUMMARY"
exit 0
