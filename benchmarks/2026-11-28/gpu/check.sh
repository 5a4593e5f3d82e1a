#!/usr/bin/env bash
# GPU checks of umask on a lent machine (run from the repository root, wheels in .gpu/):
# the CUDA tests, the engine's whole CPU test set with a GPU present, then time to
# universal on CUDA: umask's default and the study's preset, seed 0.
export PYTHONUNBUFFERED=1
START=$(date +%s); left() { echo $(( ${BUDGET:-420} - ($(date +%s) - START) )); }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision, sys; print(sys.version.split()[0], torch.__version__, torchvision.__version__, torch.cuda.get_device_name(), torch.get_num_threads(), 'threads')"
echo "== tests/test_cuda.py"
timeout 180 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py 2>&1 | tee $OUT/pytest_cuda.txt | tail -15
# The dashboard's tests need streamlit and chromium (not on that machine); the rest runs
# as on CI, but with CUDA present: whatever picks "auto" takes the GPU here.
echo "== engine tests with a GPU present ($(left) s left)"
# Four pytest processes of two torch threads each. Edited after the run this
# folder records: that run (pytest_engine.txt) used -n 8 -x with sixteen threads
# each, which starved the worker-process tests of CPU (see README.md).
OMP_NUM_THREADS=2 timeout 200 python3 -m pytest -q -p no:cacheprovider -n 4 tests --ignore=tests/test_app.py \
  --ignore=tests/test_app_adversarial.py --ignore=tests/test_app_study.py --ignore=tests/test_browser.py \
  2>&1 | tee $OUT/pytest_engine.txt | tail -25
R=$OUT/runs; mkdir -p $R
for spec in "fast 10 grid" "fast 10 hstripes" "fast 26 grid" "fast 26 hstripes" "fast 62 grid" "fast 62 hstripes" "seed 10 grid" "seed 26 grid" "seed 62 hstripes"; do
  set -- $spec
  need=$([ $1 = seed ] && echo 90 || echo 25)
  [ $(left) -lt $need ] && { echo "skip $spec ($(left) s left)"; continue; }
  echo "== $spec ($(left) s left)"
  timeout $(( $(left) - 5 )) python3 -m umask generate --device cuda --preset $1 --k $2 --masks $3 --seed 0 --out /tmp/runs/$1-k$2-$3 2>&1 | tail -2
done
python3 benchmarks/2026-11-26/gpu/summarise.py /tmp/runs | tee $OUT/runs.md
