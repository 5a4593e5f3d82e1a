#!/usr/bin/env bash
# GPU checks of umask on a lent machine: CUDA tests, study estimate, memory, time to universal.
export PYTHONUNBUFFERED=1
START=$(date +%s); left() { echo $(( ${BUDGET:-500} - ($(date +%s) - START) )); }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__, torch.cuda.get_device_name(), torch.get_num_threads(), 'threads')"
echo "== tests/test_cuda.py"; timeout 200 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py 2>&1 | tee $OUT/pytest_cuda.txt | tail -25
echo "== estimate ($(left) s left)"; timeout 120 python3 -m umask sweep --study --estimate --device cuda --out /tmp/est 2>&1 | tail -20 | tee $OUT/estimate.txt
echo "== memory ($(left) s left)"; timeout 90 python3 benchmarks/2026-11-26/gpu/probe_memory.py efficientnet_lite0 resnet50 vgg16 efficientnet_b4 alexnet googlenet mobilenet_v3_small 2>&1 | tee $OUT/memory.txt
R=/tmp/runs; mkdir -p $R
for spec in "fast 62 grid" "fast 62 hstripes" "fast 26 grid" "fast 26 hstripes" "fast 10 grid" "fast 10 hstripes" "seed 62 hstripes" "seed 62 grid" "seed 26 grid" "seed 10 grid"; do
  set -- $spec
  need=$([ $1 = seed ] && echo 110 || echo 30)
  [ $(left) -lt $need ] && { echo "skip $spec ($(left) s left)"; continue; }
  echo "== $spec ($(left) s left)"
  timeout $(( $(left) - 5 )) python3 -m umask generate --device cuda --preset $1 --k $2 --masks $3 --seed 0 --out $R/$1-k$2-$3 2>&1 | tail -2
done
python3 benchmarks/2026-11-26/gpu/summarise.py $R | tee $OUT/runs.md
