#!/usr/bin/env bash
# Everything only a GPU can show, in one call (under 10 minutes on one H100), ending in one summary:
#   1. the frozen pass of ViT-L/14, fp32 vs bf16 autocast (benchmarks/precision.py); every feature-pass rate
#      (1. and 2.) with its fraction of the GPU's bf16 arithmetic limit (issue 23: >= 50 %, 3,000 images/s
#      on an H200), rows written behind the pass (aigid.features._Writer)
#   2. RINE at the paper's scale on CUDA: the real ViT-L/14 pass streamed to the store, peak RSS,
#      one trial (benchmarks/paper_scale.py --device cuda --skip-grid: the engine overhead, Ray and
#      MLflow around tiny offline trials, needs no GPU and is measured on CPU)
#   3. APN, K = 25 proposals folded into the batch vs looped, bf16 autocast (benchmarks/apn_step.py)
#   4. LoL-sized trials packed at 0.25 GPU vs one per GPU (benchmarks/packing.py --gpu)
#   5. LoL's RN50 and APN's training steps, float32 vs the device rule (bf16 autocast + channels_last), per
#      trial against the H200's limit and against decoding (benchmarks/finetune_step.py)
#   6. RINE head trials at the paper's shapes from device-resident rows against their bare arithmetic
#      (benchmarks/heads.py --device cuda: trials per hour and the data path efficiency)
#   7. RINE's offline smoke grid as a real sweep, trials at 0.25 GPU, its 48 trials in 12 xi stacks (Ray, MLflow,
#      each member its own trial and run: aigid/methods/rine/members.py) -- the stacks' first run on CUDA
#   8. the feature pass's input side for a fixed test view, 512² JPEGs: PIL in the loader workers against
#      decode_jpeg on the GPU (nvjpeg, aigid/data/device_decode.py; benchmarks/decode.py)
# --cpu runs the same scripts at tiny shapes on CPU, so that the suite is known to work without a GPU.
# A failed step is reported (FAILED, and exit status 1 at the end) and the suite goes on: a GPU lease is
# too short to lose the other steps.
#
#   bash benchmarks/gpu_suite.sh [--cpu]        # output also in gpu_suite.log
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
LOG=gpu_suite.log
SWEEP_WORK="${TMPDIR:-/tmp}/aigid-gpu-suite-sweep"
stacked_sweep() {  # stacked_sweep [sweep flags]: the offline RINE smoke grid, stacked, in a fresh folder
    rm -rf "$SWEEP_WORK"
    AIGID_STACK=${AIGID_STACK:-auto} "$PYTHON" sweeps/rine_grid.py --smoke --name gpu-suite-stacks \
        --storage "$SWEEP_WORK/runs" --cache-dir "$SWEEP_WORK/cache" --mlflow-uri "sqlite:///$SWEEP_WORK/mlflow.db" "$@"
}
: >"$LOG"

step() {  # step NAME COMMAND...: run, keep the output, remember its last line for the summary
    local name=$1
    shift
    echo "== $name: $*" | tee -a "$LOG"
    "$@" 2>&1 | tee -a "$LOG" | grep -v "^\s*$" | tail -n 1 >"$LOG.$name"
    local status=("${PIPESTATUS[@]}")
    if [[ ${status[0]} != 0 ]]; then
        echo "FAILED (exit ${status[0]}): $(cat "$LOG.$name")" >"$LOG.$name"
        failed=1
    fi
    tee -a "$LOG" <"$LOG.$name"
}
failed=0

if [[ "${1:-}" == "--cpu" ]]; then
    step precision "$PYTHON" benchmarks/precision.py --device cpu --backbone aigid-tiny-vit --images 64 --batch 16 --workers 1
    step paper_scale "$PYTHON" benchmarks/paper_scale.py --sizes 1000 2000 --trial-images 200 --skip-grid \
        --work "${TMPDIR:-/tmp}/aigid-gpu-suite-cpu"
    step apn "$PYTHON" benchmarks/apn_step.py --device cpu --steps 1 --batch 4
    step packing "$PYTHON" benchmarks/packing.py --trials 4 --epochs 2 --steps 2
    step finetune "$PYTHON" benchmarks/finetune_step.py --device cpu --steps 1 --methods lol
    step heads "$PYTHON" benchmarks/heads.py --train-rows 400 --test-rows 20 --trials 1 \
        --work "${TMPDIR:-/tmp}/aigid-gpu-suite-heads-cpu"
    step heads_d128 "$PYTHON" benchmarks/heads.py --train-rows 200 --test-rows 20 --trials 2 --stack --proj-dim 128 \
        --work "${TMPDIR:-/tmp}/aigid-gpu-suite-heads-cpu"
    AIGID_STACK=1 step stacked_sweep stacked_sweep
    step decode "$PYTHON" benchmarks/decode.py --images 64 --size 256
else
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$LOG"
    step precision "$PYTHON" benchmarks/precision.py --device cuda --images 2048 --workers 12
    step paper_scale "$PYTHON" benchmarks/paper_scale.py --device cuda --workers 12 --threads 4 --skip-grid
    step apn "$PYTHON" benchmarks/apn_step.py --preset paper --device cuda --batch 32
    step packing "$PYTHON" benchmarks/packing.py --gpu --num-cpus 16
    step finetune "$PYTHON" benchmarks/finetune_step.py --preset paper --device cuda --steps 10
    step heads "$PYTHON" benchmarks/heads.py --device cuda --train-rows 8000 --trials 4 --threads 4 --workers 12 --stack
    step heads_d128 "$PYTHON" benchmarks/heads.py --device cuda --train-rows 8000 --trials 4 --threads 4 --workers 12 \
        --stack --proj-dim 128
    step stacked_sweep stacked_sweep --gpus-per-trial 0.25
    step decode "$PYTHON" benchmarks/decode.py --device cuda --images 2048 --workers 12
fi

echo "== summary" | tee -a "$LOG"
for name in precision paper_scale apn packing finetune heads heads_d128 stacked_sweep decode; do
    printf '%-12s %s\n' "$name" "$(cat "$LOG.$name")" | tee -a "$LOG"
    rm -f "$LOG.$name"
done
exit $failed
