#!/usr/bin/env bash
# The one prepared script for a session lent a GPU (issue 5). See docs/training.md,
# "Running the GPU benchmarks", for the four `run` calls that bring the data and start it.
#
#   bash benchmarks/gpu_session.sh            # on the device machine, repository root
#   DATA_ONLY=1 bash benchmarks/gpu_session.sh   # only check and lay out CIFAR-10 (for other runs)
#
# Needs .data/c10-1 (data_batch_1,2.bin), .data/c10-2 (3,4), .data/c10-3 (5, test_batch.bin,
# batches.meta.txt) and .data/mnist (the four MNIST .gz files). Runs, each under its own time
# cap and all within BUDGET seconds (default 540, one 10-minute command):
#   1. resnet-cifar-fast: whole-command wall time, test accuracy exact and through JPEG q75
#   2. LeNet-5 on MNIST (lenet5-mnist): wall time, time to 99.0%
#   3. throughput, cnnlab vs plain loop, eager (all models)
#   4. time to accuracy (ResNet-20 paper recipe, 2 epochs each side: seconds per epoch)
#   5. throughput with torch.compile, model by model while the budget lasts
# Writes $OUT/results.md (every table), $OUT/log.txt (everything printed) and $OUT/runs.tar.gz
# (the run directories, checkpoints included, so runs can be resumed or evaluated later).
set -uo pipefail
OUT=${OUT:-runs/gpu-session-out}
BUDGET=${BUDGET:-540}
RUNS=runs/gpu-session
START=$(date +%s)
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
RESULTS="$OUT/results.md"
exec > >(tee -a "$OUT/log.txt") 2>&1

left() { echo $((BUDGET - ($(date +%s) - START))); }
# step NAME CAP COMMAND...: run COMMAND under min(CAP, time left), record its wall time and exit status
step() {
  local name=$1 cap=$2; shift 2
  local t=$(left); ((t > cap)) && t=$cap
  if ((t < 20)); then echo "$name: skipped (budget spent)" | tee -a "$OUT/steps.txt"; return 1; fi
  echo "=== $name (cap ${t}s): $*"
  local t0=$(date +%s%N)
  timeout "$t" "$@"; local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "$name: exit $rc, $((ms / 1000)).$(printf %03d $((ms % 1000))) s" | tee -a "$OUT/steps.txt"
  return $rc
}

# --- data: check the parts arrived and lay them out as cifar-10-batches-bin -----------------------
CIFAR=.data/cifar10/cifar-10-batches-bin
mkdir -p "$CIFAR"
for f in c10-1/data_batch_1.bin c10-1/data_batch_2.bin c10-2/data_batch_3.bin c10-2/data_batch_4.bin \
         c10-3/data_batch_5.bin c10-3/test_batch.bin; do
  size=$(stat -L -c %s ".data/$f" 2>/dev/null || echo 0)
  if [[ $size != 30730000 ]]; then echo "MISSING or short: .data/$f ($size bytes): carry .data/${f%%/*} again"; exit 2; fi
  ln -f ".data/$f" "$CIFAR/"
done
cp -f .data/c10-3/batches.meta.txt "$CIFAR/" 2>/dev/null || echo "note: batches.meta.txt missing (not needed)"
if [[ -n ${DATA_ONLY:-} ]]; then echo "CIFAR-10 laid out in $CIFAR"; exit 0; fi
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [[ -s .data/mnist/$f ]] || { echo "MISSING .data/mnist/$f: carry .data/mnist"; MNIST_MISSING=1; }
done
nvidia-smi -L
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
echo "# GPU session $(date -u +%Y-%m-%dT%H:%MZ), $(nvidia-smi --query-gpu=name --format=csv,noheader), commit $(git rev-parse --short HEAD 2>/dev/null)" > "$RESULTS"

# --- 1. resnet-cifar-fast ---------------------------------------------------------------------------
if step resnet-cifar-fast 200 $PY -m cnnlab train resnet20 --recipe resnet-cifar-fast --data-dir .data --out "$RUNS/fast" --quiet; then
  { echo; echo "## resnet-cifar-fast (whole command: $(tail -1 "$OUT/steps.txt"))"; } >> "$RESULTS"
  step fast-eval 90 $PY benchmarks/cifar_time_to_accuracy.py --data-dir .data --eval-run "$RUNS/fast" | tee -a "$RESULTS"
fi

# --- 2. LeNet-5 on MNIST to 99% --------------------------------------------------------------------
if [[ -z ${MNIST_MISSING:-} ]] && step lenet5-mnist 90 $PY -m cnnlab train lenet5 --recipe lenet5-mnist --data-dir .data/mnist --out "$RUNS/lenet5-mnist" --quiet; then
  { echo; echo "## LeNet-5 MNIST (whole command: $(tail -1 "$OUT/steps.txt"))"; echo; echo '```'
    $PY - "$RUNS/lenet5-mnist" <<'PYEOF'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
test = [r for r in records if r["split"] == "test"]
hit = [r for r in test if r["top1"] >= 0.99]
print(f"final test top-1 {100 * test[-1]['top1']:.2f}% after {test[-1]['epoch']} epochs, trainer time {test[-1]['time']:.1f} s; "
      + (f"99.0% first at epoch {hit[0]['epoch']}, {hit[0]['time']:.1f} s" if hit else "99.0% never reached"))
PYEOF
    echo '```'; } >> "$RESULTS"
fi

# --- 3. throughput, eager, every model -----------------------------------------------------------
{ echo; echo "## Throughput, eager (--no-compile)"; } >> "$RESULTS"
step throughput-eager 150 $PY benchmarks/train_gpu_throughput.py --no-compile --steps 40 | tee -a "$RESULTS"
# --- 4. time to accuracy: seconds per epoch, cnnlab vs DataLoader reference ------------------------
{ echo; echo "## Time to accuracy, ResNet-20 paper recipe, 704 steps (2 epochs) each side"; } >> "$RESULTS"
step tta 150 $PY benchmarks/cifar_time_to_accuracy.py --data-dir .data --out "$RUNS/tta" --max-steps 704 \
  --ref-epochs 2 --workers 8 | tee -a "$RESULTS"

# --- 5. throughput with torch.compile, as many models as the time left allows -----------------
{ echo; echo "## Throughput, torch.compile (the models that fit the time)"; echo
  echo "| model | batch | train img/s cnnlab | plain | ratio | MFU | infer img/s cnnlab | plain | ratio |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"; } >> "$RESULTS"
for model in resnet20 resnet56 resnet18 resnet50 alexnet vgg16 googlenet; do
  step "throughput-compile-$model" 120 $PY benchmarks/train_gpu_throughput.py --models $model --steps 40 \
    | grep "^| $model " >> "$RESULTS" || break
done

{ echo; echo "## Steps (exit status 124: stopped at its cap)"; echo; echo '```'; cat "$OUT/steps.txt"; echo '```'; } >> "$RESULTS"
tar czf "$OUT/runs.tar.gz" "$RUNS"
echo "done in $(( $(date +%s) - START )) s; results in $RESULTS"
