#!/usr/bin/env bash
# What a session with a lent GPU runs through the device tool. A session has about 15 minutes of device
# time in all (starting the machine takes 40 s to 2 minutes of it) and one call may run 10 minutes, so
# `check` is one call of at most BUDGET (570) seconds, the most needed first; then at once, if `status`
# shows device time left (the machine goes back after 30 s idle), `throughput SECONDS` with what is left
# less a minute; then give the machine back. Every part has its own time limit, cut to what is left of the
# call's budget (a part that would get less than it needs is skipped, and the log says so), logs as it
# goes and leaves its results in $OUT, so a part that fails or runs long costs only its own share.
# At most 8 files come back from $OUT, so it holds three: gpu.txt (this log), results.tar (each part's output
# as NAME.txt, and benchmarks/results) and, after `train`, run.tar.
#
#   bash benchmarks/gpu-session.sh check [SECONDS]
#       First the GPU tests (the only check of the code that runs on a GPU alone: the fused kernels, the
#       photo's colours on the GPU, streams), then the fused kernels at 12 MP in fp16 (the 60 ms target:
#       agreement with eager fp32, BLOCK / warps / tile-width / product-depth settings, a profile, fused
#       and eager captured as one CUDA graph each), a folder of 12 MP JPEGs through `recnet correct` (the
#       folder target, with its traced pipeline, and its host side waiting the model's time), whole-image
#       inference at 1-24 MP against the reference, the photo's colours on the GPU, and last, in what is
#       left, each earlier version of the kernels under local/variants (see below).
#   bash benchmarks/gpu-session.sh throughput [SECONDS]
#       The folder of `check` with --fused, with pinned memory registered in threads and with a 0.2 ms GIL
#       switch interval, then 24 MP and 45 MP in strips of 1024 (the 2 GiB target) and whole. Training
#       steps (119 ms a bf16 step on 2026-12-04): `profile`. (bench_gil.py times the host alone: run it on
#       any 16-core machine, not in device time.)
#   bash benchmarks/gpu-session.sh profile [SECONDS]
#       benchmarks/profile_gpu.py: warmed-up timings and profiler tables of inference and a training step.
#   bash benchmarks/gpu-session.sh train MINUTES [STEPS [extra recnet train options]]
#       Fine-tunes the bundled model in local/runs/gpu (or resumes it when it holds a checkpoint) and
#       puts the run folder in $OUT/run.tar. Carry local/photos (and local/runs/gpu when resuming).
#
# Device calls:  run(command="bash benchmarks/gpu-session.sh check", carry=["local/variants"], timeout_s=600)
#   then, if time is left:  run(command="bash benchmarks/gpu-session.sh throughput 240", timeout_s=270)
# To time an earlier version of the kernels against the working tree's, put its package in local/variants
# (git-ignored, so carried):  git archive 97cf2e1 recnet_cli | tar -x -C local/variants/97cf2e1
# Training needs local/photos (about 41 MB of 768-pixel JPEGs), made here and carried:
#   python -c "from pathlib import Path; from recnet_cli.train.data import downscale_photos; \
#     downscale_photos(Path('../shared/data/photos'), Path('local/photos'), max_side=768)"
#   run(command="bash benchmarks/gpu-session.sh train 9", carry=["local/photos"], timeout_s=600)
# After it: mkdir -p local/runs/gpu && tar -xf <files_at>/run.tar -C local/runs/gpu; score the new model
#   python benchmarks/bench_quality.py ../shared/data/photos --model local/runs/gpu/final.safetensors
# and replace weights/recnet-mixed.* only if it beats the bundled model.
# The machine's python3 holds PyTorch with CUDA and every package recnet needs; nothing is installed.
# Its Triton was 3.6.0 (torch 2.11.0+cu130): the fused kernels' float32 products are padded to 16 channels
# deep there (triton_stages.PRODUCT_DEPTH), not 8 as with Triton 3.8 and later, which it cannot time.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1 PYTHONPATH="$PWD" RECNET_WEIGHTS_DIR="$PWD/weights"
OUT="${OUT:-/tmp/recnet-gpu}"
mkdir -p "$OUT"
LOG="$OUT/gpu.txt"
PARTS="$(mktemp -d)"  # each part's output, NAME.txt: in $OUT/results.tar
RUN=local/runs/gpu
DEVICE="${RECNET_TRAIN_DEVICE:-cuda}"  # cpu, to try the train phase on a machine without a GPU

log() { echo "== $(date +%T) $*" | tee -a "$LOG"; }

# part SECONDS NAME COMMAND...: runs COMMAND with a time limit, its output in NAME.txt. At the limit
# it gets SIGABRT, on which Python (PYTHONFAULTHANDLER) prints every thread's stack: a hang shows where.
part() {
    local seconds="$1" name="$2"
    shift 2
    log "$name (limit ${seconds}s): $*"
    timeout --signal=ABRT --kill-after=10 "$seconds" "$@" > "$PARTS/$name.txt" 2>&1
    log "$name exit $?"
    tail -3 "$PARTS/$name.txt" | tee -a "$LOG"
    # after every part: the session may end at any point
    tar -cf "$OUT/results.tar" benchmarks/results -C "$PARTS" .
}

BUDGET=570  # seconds of parts in one call: the device tool's 600 s a command, less the log and archive
STARTED=$SECONDS

# within LEAST MOST NAME COMMAND...: ``part`` with a limit of MOST seconds or what is left of the call's
# BUDGET, whichever is less; skipped, and logged, where fewer than LEAST seconds are left.
within() {
    local least="$1" most="$2" name="$3" left=$((BUDGET - (SECONDS - STARTED)))
    shift 3
    if ((left < least)); then
        log "$name skipped: ${left}s left of the call's ${BUDGET}s, it needs ${least}s"
        return
    fi
    part $((left < most ? left : most)) "$name" "$@"
}

check() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$LOG"
    # First: the code that runs on a GPU alone has no other check. They took 89 s on 2026-12-04 and have
    # grown since (more kernel settings to compile). In this one process (-o addopts: no pytest-xdist
    # workers, which the machine may not have).
    within 90 180 tests python3 -m pytest -q -o addopts=-ra tests/test_cuda.py tests/test_triton_stages.py
    within 60 110 fused python3 benchmarks/profile_gpu.py --mp 12 --fused --precisions fp16
    # The command ran at 1.5x the model's time on 2026-12-04, when Pillow's JPEG encoder held the GIL in the
    # writer threads (OpenCV encodes since): does it keep up now? If not, the traced pipeline's lines say
    # where the time goes (GPU idle between photos, the compute thread, pinned memory's growth). Its model
    # row and the command include the photo's colours, given on the GPU since 2026-12-06.
    within 60 90 folder python3 benchmarks/bench_folder.py --mp 12 --count 16
    within 60 100 inference python3 benchmarks/bench_inference.py --name inference- --sizes 1,12,24 \
        --reference-mp 12 --modes reference,fused-whole,whole --precisions fp32,fp16
    # The photo's colours on the GPU (since 2026-12-06), against OpenCV on this machine's CPU.
    within 15 25 colours python3 benchmarks/bench_colours.py --sizes 12,24
    # An earlier version ignores the tile width it does not have: it runs across rows.
    for variant in local/variants/*/; do
        [[ -d "$variant" ]] || continue  # none carried: the pattern stays as typed
        PYTHONPATH="$PWD/$variant:$PWD" within 40 60 "fused-$(basename "$variant")" python3 \
            benchmarks/profile_gpu.py --mp 12 --fused --precisions fp16 --configs 128x4x0,256x4x0
    done
}

throughput() {
    # If the folder (`check`) still lags the model: fewer launches, or a shorter switch interval?
    within 60 90 folder-fused python3 benchmarks/bench_folder.py --mp 12 --count 16 --fused --name fused-
    # Each photo in flight holds pinned host memory, which PyTorch rounds up to a power of two (256 MiB for a
    # 12 MP float32 output) and pins with one cudaHostAlloc each in the compute thread while its pool grows:
    # does pinning with cudaHostRegister in 8 threads help?
    PYTORCH_CUDA_ALLOC_CONF=pinned_use_cuda_host_register:True,pinned_num_register_threads:8 \
        within 60 90 folder-pinned python3 benchmarks/bench_folder.py --mp 12 --count 16 --name pinned-
    within 60 90 folder-switch python3 benchmarks/bench_folder.py --mp 12 --count 16 --switch-interval 0.0002 \
        --name switch-
    # --tile N keeps the full-size maps in pinned host memory and streams full-width strips.
    within 60 120 tiled python3 benchmarks/bench_inference.py --name tiled- --sizes 24 --modes fused-tiled,tiled \
        --tile 1024 --precisions fp16,fp32
    within 60 120 large python3 benchmarks/bench_inference.py --name large- --sizes 45 \
        --modes fused-whole,fused-tiled --tile 1024 --precisions fp16,fp32
}

# planned_steps MINUTES: the steps that fit at 0.17 s a step (`recnet train`, bf16, batch 8 x 384^2, on an
# H200 on 2026-11-30), leaving a fifth for start-up, validation and checkpoints.
planned_steps() {
    python3 -c "print(max(100, int(($1 * 60 - 40) * 0.8 / 0.17)))"
}

train() {
    local minutes="$1" steps="${2:-$(planned_steps "$1")}"
    shift $(($# < 2 ? $# : 2))
    if [[ -f "$RUN/checkpoint.safetensors" ]]; then
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
    check) BUDGET="${2:-$BUDGET}"; check ;;
    throughput) BUDGET="${2:-$BUDGET}"; throughput ;;
    profile) part "${2:-100}" profile python3 benchmarks/profile_gpu.py --mp 12 ;;
    train) shift; train "${1:?MINUTES}" "${@:2}" ;;
    *) echo "usage: $0 check [SECONDS] | throughput [SECONDS] | profile [SECONDS] | train MINUTES [STEPS [options]]" >&2
       exit 2 ;;
esac
log done
