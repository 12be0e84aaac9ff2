#!/usr/bin/env bash
# What a session with a lent GPU runs through the device tool. A session has about 15 minutes of device
# time in all and one call may run 10 minutes, so the plan is ONE call of `all`, then give the machine
# back. Every part has its own time limit, logs as it goes and leaves its results in $OUT, so a part
# that fails or runs long costs only its own share. At most 8 files come back from $OUT.
#
#   bash benchmarks/gpu-session.sh all MINUTES
#       check (GPU tests, profile and benchmarks, at most about 7.5 minutes), then fine-tune the bundled model
#       for what is left of MINUTES, with as many steps as fit at the rate the check measured.
#   bash benchmarks/gpu-session.sh check
#   bash benchmarks/gpu-session.sh profile [SECONDS]
#       benchmarks/profile_gpu.py: warmed-up timings and profiler tables of inference and a training step.
#   bash benchmarks/gpu-session.sh train MINUTES [STEPS [extra recnet train options]]
#       Fine-tunes the bundled model in local/runs/gpu (or resumes it when it holds a checkpoint) and
#       puts the run folder in $OUT/run.tar. Carry local/photos (and local/runs/gpu when resuming).
#
# Device call:  run(command="bash benchmarks/gpu-session.sh all 9.3", carry=["local/photos"], timeout_s=600)
# Before it, here: make local/photos (about 31 MB of 768-pixel JPEGs):
#   python -c "from pathlib import Path; from recnet_cli.train.data import downscale_photos; \
#     downscale_photos(Path('../shared/data/photos'), Path('local/photos'), max_side=768)"
# After it: mkdir -p local/runs/gpu && tar -xf <files_at>/run.tar -C local/runs/gpu; score the new model
#   python benchmarks/bench_quality.py ../shared/data/photos --model local/runs/gpu/final.safetensors
# and replace weights/recnet-mixed.* only if it beats the bundled model.
# The machine's python3 holds PyTorch with CUDA and every package recnet needs; nothing is installed.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1 PYTHONPATH="$PWD" RECNET_WEIGHTS_DIR="$PWD/weights"
OUT="${OUT:-/tmp/recnet-gpu}"
mkdir -p "$OUT"
LOG="$OUT/gpu.txt"
RUN=local/runs/gpu
DEVICE="${RECNET_TRAIN_DEVICE:-cuda}"  # cpu, to try the train phase on a machine without a GPU
START=$SECONDS

log() { echo "== $(date +%T) $*" | tee -a "$LOG"; }

# part SECONDS NAME COMMAND...: runs COMMAND with a time limit, its output in $OUT/NAME.txt. At the limit
# it gets SIGABRT, on which Python (PYTHONFAULTHANDLER) prints every thread's stack: a hang shows where.
part() {
    local seconds="$1" name="$2"
    shift 2
    log "$name (limit ${seconds}s): $*"
    timeout --signal=ABRT --kill-after=10 "$seconds" "$@" > "$OUT/$name.txt" 2>&1
    log "$name exit $?"
    tail -3 "$OUT/$name.txt" | tee -a "$LOG"
}

check() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$LOG"
    part 60 tests python3 -m pytest -q tests/test_cuda.py
    part 100 profile python3 benchmarks/profile_gpu.py --mp 12
    # Tiled runs are timed by profile_gpu.py at 2 MP: at 24-45 MP they take 30-50 s each (2026-11-30).
    part 150 inference python3 benchmarks/bench_inference.py --sizes 1,12,24,45 --reference-mp 12 \
        --modes reference,whole --precisions fp32,fp16
    part 75 training python3 benchmarks/bench_training.py --steps 10 --precisions bf16
    part 60 folder python3 benchmarks/bench_folder.py --mp 12 --count 16
    tar -cf "$OUT/results.tar" benchmarks/results
}

# planned_steps MINUTES: the steps that fit, at the rate bench_training measured for our bf16 step with
# on-the-fly data (else 0.17 s, `recnet train` on an H200 on 2026-11-30), leaving a fifth for start-up,
# validation and checkpoints.
planned_steps() {
    python3 - "$1" "$OUT/training.txt" <<'PY'
import json, sys
minutes, path = float(sys.argv[1]), sys.argv[2]
rates = [
    row["seconds_per_step"]
    for row in (json.loads(line) for line in open(path) if line.startswith("{"))
    if (row.get("mode"), row.get("precision")) == ("fast+data", "bf16") and "seconds_per_step" in row
]
print(max(100, int((minutes * 60 - 40) * 0.8 / (rates[0] if rates else 0.17))))
PY
}

train() {
    local minutes="$1" steps="${2:-1500}"
    shift $(($# < 2 ? $# : 2))
    if [[ -f "$RUN/checkpoint.json" ]]; then
        log "resuming $RUN for $minutes min"
        python3 -m recnet_cli train --resume "$RUN" --time-limit "$minutes" --quiet 2>&1 | tee -a "$LOG"
    else
        log "fine-tuning the bundled model for $minutes min ($steps steps planned)"
        python3 -m recnet_cli train --photos local/photos --out "$RUN" --init recnet-mixed --steps "$steps" \
            --batch 8 --crop 384 --lr 1e-4 --no-ecr --device "$DEVICE" --precision bf16 --val-every 1000 \
            --checkpoint-every 250 --time-limit "$minutes" --quiet "$@" 2>&1 | tee -a "$LOG"
    fi
    tail -2 "$RUN/metrics.jsonl" | tee -a "$LOG"
    tar -cf "$OUT/run.tar" -C "$RUN" .
}

case "${1:-}" in
    all)
        check
        minutes=$(python3 -c "print(round(${2:?MINUTES} - ($SECONDS - $START) / 60 - 0.4, 2))")
        if python3 -c "import sys; sys.exit($minutes < 1)"; then
            train "$minutes" "$(planned_steps "$minutes")"
        else
            log "only $minutes min left: no training"
        fi
        ;;
    check) check ;;
    profile) part "${2:-100}" profile python3 benchmarks/profile_gpu.py --mp 12 ;;
    train) shift; train "${1:?MINUTES}" "${@:2}" ;;
    *) echo "usage: $0 all MINUTES | check | profile [SECONDS] | train MINUTES [STEPS [options]]" >&2; exit 2 ;;
esac
log done
