#!/usr/bin/env bash
# What a session with a lent GPU runs through the device tool. A session has about 15 minutes of device
# time in all and one call may run 10 minutes; starting the machine takes about 40 s. On 2026-12-04 (H200)
# an earlier `check` took 270 s and `throughput` 102 s; these take longer now (about 9.5 and 4 minutes
# with two variants, guessed from their parts' runs that day; `check`'s limits add up to 490 s before the
# GPU tests, which get the rest of 585 s, so keep to two): run `check`, then at once (the machine goes back
# after 30 s idle) `throughput`, then give the machine back. Every part has its own time limit, logs
# as it goes and leaves its results in $OUT, so a part that fails or runs long costs only its own share.
# At most 8 files come back from $OUT, so it holds three: gpu.txt (this log), results.tar (each part's output
# as NAME.txt, and benchmarks/results) and, after `train`, run.tar.
#
#   bash benchmarks/gpu-session.sh check
#       The fused kernels at 12 MP (agreement with eager fp32, BLOCK / warps / tile-width /
#       product-depth settings, a profile, fused and eager captured as one CUDA graph each), the same for
#       each earlier version of the kernels under local/variants (see below), whole-image inference at
#       1-24 MP against the reference, a folder of 12 MP JPEGs through `recnet correct` (with its
#       traced pipeline, and its host side waiting the model's time), then the GPU tests: at most 585 s
#       with two variants.
#   bash benchmarks/gpu-session.sh throughput
#       The folder of `check` with --fused, with pinned memory registered in threads and with a 0.2 ms GIL
#       switch interval, how much the host threads hold the GIL (bench_gil.py), the colour transfer on the
#       GPU (bench_colours.py), then 24 MP and 45 MP in strips of 1024 (the 2 GiB target) and whole: its
#       parts' limits add up to 585 s. Training steps (119 ms a bf16 step on 2026-12-04): `profile`.
#   bash benchmarks/gpu-session.sh profile [SECONDS]
#       benchmarks/profile_gpu.py: warmed-up timings and profiler tables of inference and a training step.
#   bash benchmarks/gpu-session.sh train MINUTES [STEPS [extra recnet train options]]
#       Fine-tunes the bundled model in local/runs/gpu (or resumes it when it holds a checkpoint) and
#       puts the run folder in $OUT/run.tar. Carry local/photos (and local/runs/gpu when resuming).
#
# Device call:  run(command="bash benchmarks/gpu-session.sh check", carry=["local/variants"], timeout_s=600)
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

check() {
    local start=$SECONDS
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$LOG"
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$LOG"
    part 110 fused python3 benchmarks/profile_gpu.py --mp 12 --fused --precisions fp16
    part 70 fused-fp32 python3 benchmarks/profile_gpu.py --mp 12 --fused --precisions fp32 \
        --configs 128x4x0,128x4x16,128x4x32,256x4x16
    # An earlier version ignores the tile width it does not have: it runs across rows.
    for variant in local/variants/*/; do
        PYTHONPATH="$PWD/$variant:$PWD" part 60 "fused-$(basename "$variant")" python3 benchmarks/profile_gpu.py \
            --mp 12 --fused --precisions fp16 --configs 128x4x0,256x4x0
    done
    part 100 inference python3 benchmarks/bench_inference.py --name inference- --sizes 1,12,24 \
        --reference-mp 12 --modes reference,fused-whole,whole --precisions fp32,fp16
    # The command ran at 1.5x the model's time on 2026-12-04, when Pillow's JPEG encoder held the GIL in the
    # writer threads (OpenCV encodes since): does it keep up now? If not, the traced pipeline's lines say
    # where the time goes (GPU idle between photos, the compute thread, pinned memory's growth). Here, in
    # case `throughput` gets no machine. Its model row and the command include the photo's colours, given on
    # the GPU since 2026-12-06 (untimed there before this).
    part 90 folder python3 benchmarks/bench_folder.py --mp 12 --count 16
    # Last, in what is left of the call's 600 s: they took 89 s on 2026-12-04 and have grown since (more
    # kernel settings to compile), past the 100 s they had when they came first. In this one process (-o
    # addopts: no pytest-xdist workers, which the machine may not have).
    part $((585 - (SECONDS - start))) tests python3 -m pytest -q -o addopts=-ra tests/test_cuda.py \
        tests/test_triton_stages.py
}

throughput() {
    # If the folder (`check`) still lags the model: fewer launches, or a shorter switch interval? And how much
    # do the readers (Pillow's decoder) hold the compute thread up on this machine? First, since the 24 and
    # 45 MP figures below were measured before and met their target.
    part 90 folder-fused python3 benchmarks/bench_folder.py --mp 12 --count 16 --fused --name fused-
    # Each photo in flight holds pinned host memory, which PyTorch rounds up to a power of two (256 MiB for a
    # 12 MP float32 output) and pins with one cudaHostAlloc each in the compute thread while its pool grows:
    # does pinning with cudaHostRegister in 8 threads help?
    PYTORCH_CUDA_ALLOC_CONF=pinned_use_cuda_host_register:True,pinned_num_register_threads:8 \
        part 90 folder-pinned python3 benchmarks/bench_folder.py --mp 12 --count 16 --name pinned-
    part 90 folder-switch python3 benchmarks/bench_folder.py --mp 12 --count 16 --switch-interval 0.0002 \
        --name switch-
    part 50 gil python3 benchmarks/bench_gil.py --mp 12 --threads 4 --seconds 8 --name gpu-host-
    # The photo's colours on the GPU (since 2026-12-06), against OpenCV on this machine's CPU.
    part 25 colours python3 benchmarks/bench_colours.py --sizes 12,24
    # --tile N keeps the full-size maps in pinned host memory and streams full-width strips.
    part 120 tiled python3 benchmarks/bench_inference.py --name tiled- --sizes 24 --modes fused-tiled,tiled \
        --tile 1024 --precisions fp16,fp32
    part 120 large python3 benchmarks/bench_inference.py --name large- --sizes 45 \
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
    check) check ;;
    throughput) throughput ;;
    profile) part "${2:-100}" profile python3 benchmarks/profile_gpu.py --mp 12 ;;
    train) shift; train "${1:?MINUTES}" "${@:2}" ;;
    *) echo "usage: $0 check | throughput | profile [SECONDS] | train MINUTES [STEPS [options]]" >&2; exit 2 ;;
esac
log done
