#!/usr/bin/env bash
# docs/HARDWARE.md's tables, in order: the exact fronts and budgets, then the constrained
# assessment at the 10th, 25th and 50th percentile of the cells' Pixel 3 latency (3.274084,
# 6.44112 and 10.6756 ms; bench/results/hardware_fronts.md). Run from the repository root:
#   bash bench/hardware_assessment.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
$PY bench/hardware_fronts.py > bench/results/hardware_fronts.md
for p in "10 3.274084" "25 6.44112" "50 10.6756"; do
  set -- $p
  $PY assess.py --flagfile=configs/assess-nb201-hardware.flags --max_cost=pixel3_latency:$2 \
    --out=logs/assess-nb201-hardware-p$1
  mkdir -p bench/results/assess-hardware-p$1
  cp logs/assess-nb201-hardware-p$1/benchmark.md logs/assess-nb201-hardware-p$1/benchmark.csv \
    logs/assess-nb201-hardware-p$1/regret.png bench/results/assess-hardware-p$1/
done
