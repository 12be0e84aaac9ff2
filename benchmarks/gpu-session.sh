#!/usr/bin/env bash
# What a session with a lent GPU runs through the device tool, in few calls (each call may start a bare
# machine, so every phase is self-contained). Results go to $OUT (at most 8 files come back).
#
#   bash benchmarks/gpu-session.sh check
#       GPU tests, then inference, training-step and folder benchmarks (about 6 minutes on an H100).
#   bash benchmarks/gpu-session.sh train STEPS MINUTES [extra recnet train options]
#       Starts local/runs/gpu, or resumes it when it holds a checkpoint, trains for MINUTES, and puts
#       the run folder's small files in $OUT. Carry local/photos and local/runs/gpu; after the call,
#       copy the returned files back into local/runs/gpu before the next chunk.
#
# Before the first train call, here: make local/photos (about 31 MB of 768-pixel JPEGs):
#   python -c "from pathlib import Path; from recnet_cli.train.data import downscale_photos; \
#     downscale_photos(Path('../shared/data/photos'), Path('local/photos'), max_side=768)"
# The machine's python3 holds PyTorch with CUDA and every package recnet needs; nothing is installed.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" RECNET_WEIGHTS_DIR="$PWD/weights"
OUT="${OUT:-/tmp/recnet-gpu}"
mkdir -p "$OUT"
phase="${1:-check}"

if [[ "$phase" == check ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
    # Each step logs what it printed and the next one runs even if it failed.
    python3 -m pytest -q tests/test_cuda.py tests/test_fast.py tests/test_tiling.py 2>&1 | tail -5 | tee -a "$OUT/gpu.txt" || true
    python3 benchmarks/bench_inference.py --sizes 1,12,24,45 --reference-mp 12 > "$OUT/inference.md" 2>&1 || true
    python3 benchmarks/bench_training.py > "$OUT/training.md" 2>&1 || true
    python3 benchmarks/bench_folder.py --mp 12 --count 24 > "$OUT/folder.md" 2>&1 || true
    cp benchmarks/results/*nvidia*.json "$OUT/" 2>/dev/null || true
elif [[ "$phase" == train ]]; then
    steps="$2" minutes="$3"
    shift 3
    run=local/runs/gpu
    if [[ -f "$run/checkpoint.json" ]]; then
        python3 -m recnet_cli train --resume "$run" --time-limit "$minutes"
    else
        python3 -m recnet_cli train --photos local/photos --out "$run" --steps "$steps" --batch 8 --crop 384 \
            --no-ecr --device cuda --precision bf16 --val-every 1000 --checkpoint-every 250 \
            --time-limit "$minutes" "$@"
    fi
    for name in config.json checkpoint.json checkpoint.safetensors metrics.jsonl final.safetensors final.json final.md; do
        [[ -f "$run/$name" ]] && cp "$run/$name" "$OUT/"
    done
    tail -3 "$run/metrics.jsonl"
else
    echo "usage: $0 check | train STEPS MINUTES [options]" >&2
    exit 2
fi
