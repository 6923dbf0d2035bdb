#!/usr/bin/env bash
# The prepared GPU check (issue 8), under 8 minutes on one GPU: writes benchmarks/results/gpu_check.json and the
# "GPU check" section of docs/results.md. With OUT set (the device tool's output folder) only $OUT/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
if [ -n "${OUT:-}" ]; then
    timeout 470 python benchmarks/gpu_check.py --out "$OUT/gpu_check.json" "$@"
else
    timeout 470 python benchmarks/gpu_check.py --results-md "$@"
fi
