#!/usr/bin/env bash
# Every table of docs/ASSESSING.md's NAS-Bench-201 part, in order (about 45 min on 2 cores
# without the fidelity sweep). Run from the repository root: bash bench/nb201_assessment.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
# 1. Learning rates, on tuning seeds 100-109 (never in the reported grids).
$PY bench/nb201_lr_sweep.py > bench/results/nb201_lr_sweep.md
$PY bench/nb201_lr_sweep.py --strategy=reinforce_table > bench/results/nb201_lr_sweep_table.md
# 2. The headline (controller vs random, clean and none x 5, 1,000 queries, 30 seeds; default lr).
$PY assess.py --flagfile=configs/assess-nb201.flags
# 3. The other strategies and the LSTM ablation (reinforce_table) in the same folder.
$PY assess.py --flagfile=configs/assess-nb201.flags \
  --strategies=controller,random,reinforce_table,evolution,budget_controller,memory_controller
# 4. The controller at the learning rate chosen by step 1.
$PY assess.py --flagfile=configs/assess-nb201.flags --controller_lr=0.002 --out=logs/assess-nb201-lr0.002
# 5. The other settings: none x 1, none x 10, avg_pool_3x3 x 5 and nor_conv_3x3 removed.
for k in 1 10; do
  $PY assess.py --flagfile=configs/assess-nb201.flags --clean=false --poison_instances=$k \
    --strategies=controller,random,reinforce_table --out=logs/assess-nb201-k$k
done
$PY assess.py --flagfile=configs/assess-nb201.flags --clean=false --poison=avg_pool_3x3 \
  --remove_ops=nor_conv_3x3 --strategies=controller,random,reinforce_table --out=logs/assess-nb201-avgpool-removed
# 3b. The embedding strategy (pre-trained per run) and TPE (300 queries: Optuna's cost grows
#     with the trials), each beside random search in a folder of its own.
$PY assess.py --flagfile=configs/assess-nb201.flags --strategies=embedding,random --jobs=1 \
  --out=logs/assess-nb201-embedding
$PY assess.py --flagfile=configs/assess-nb201.flags --strategies=tpe,random --trials=300 \
  --budgets=100,300 --jobs=1 --out=logs/assess-nb201-tpe300
# 6. Reward errors (fresh noise, persistent error per cell, bias toward none), 1,000 queries,
#    then four of its points at 3,000 (the exact point is the headline grid at 3,000 queries).
$PY bench/nb201_fidelity.py --seeds=${FIDELITY_SEEDS:-30} --csv=bench/results/nb201_fidelity.csv \
  --plot=bench/results/nb201_fidelity.png > bench/results/nb201_fidelity.md
$PY bench/nb201_fidelity.py --seeds=${FIDELITY_SEEDS:-30} --trials=3000 --budgets=1000,3000 \
  --points=exact,fresh-tau0.26,persistent-tau0.8,bias-none0.01 \
  --csv=bench/results/nb201_fidelity_3000.csv > bench/results/nb201_fidelity_3000.md
# 7. The supernet's per-op bias on the macro space (from results already in bench/results).
$PY bench/supernet_op_bias.py > bench/results/supernet_op_bias.md
