"""The counting helpers of the benchmarks (their runs themselves are measured, not tested)."""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))

import compare  # noqa: E402
import poison_breakdown  # noqa: E402
import shared_ranking  # noqa: E402
import state_space  # noqa: E402
import zero_cost_nb201  # noqa: E402


@pytest.mark.parametrize("max_epochs, expected", [(1, 1), (3, 6), (9, 23)])
def test_hyperband_trials_per_iteration_follow_the_brackets(max_epochs, expected):
    # Keras Tuner, factor 3, max_epochs 9: three brackets; bracket 2 runs rounds of 9, 3
    # and 1 trials, bracket 1 rounds of ceil(4.5) = 5 and ceil(1.5) = 2, bracket 0 one of
    # 3 (sizes ceil(3 / (s + 1) * 3 ** (s - r))). max_epochs 3: rounds 3 + 1, then 2.
    assert compare.hyperband_trials_per_iteration(max_epochs) == expected


def test_poison_breakdown_counts_copies_as_their_op_in_the_last_quarter(tmp_path):
    rows = ["trial,layer0_op,layer1_op"]
    rows += ["1,conv3x3,conv3x3", "2,conv3x3,conv3x3", "3,conv3x3,conv3x3"]  # First quarters.
    rows += ["4,dropout1.0#2,stretched3x3#1"]
    (tmp_path / "history.csv").write_text("\n".join(rows) + "\n")
    assert poison_breakdown.rates(tmp_path, ["dropout1.0", "stretched3x3"]) == [0.5, 0.5]


def test_shared_ranking_reads_back_formatted_architectures():
    space = state_space.macro_space(4)
    rng = np.random.default_rng(0)
    for a in space.sample(rng, 20):
        assert shared_ranking.parse_architecture(space, space.format(a)) == a


def test_the_gpu_check_says_when_a_child_did_not_run_on_a_gpu(tmp_path):
    """bench/gpu_check.py is run where device time is scarce: on this machine (no GPU)
    it must train the child, see that its weights were on the CPU, and fail
    `--require_gpu` with the leg named."""
    import subprocess  # pylint: disable=import-outside-toplevel

    out = tmp_path / "gpu_check.md"
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--backends=torch", "--spaces=toy", "--device=gpu",
         "--children=1", "--train_size=64", "--batch_size=32", "--require_gpu", f"--out={out}"],
        cwd=pathlib.Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not on a GPU: torch/gpu/toy" in done.stdout
    row = next(line for line in out.read_text().splitlines() if line.startswith("| torch |"))
    assert row.split(" | ")[1:4] == ["gpu", "cpu", "toy"]  # Asked for a GPU, ran on the CPU.


def test_the_proxy_search_keeps_the_best_scored_cell_of_each_disjoint_group():
    # 20 cells: accuracy i / 100; the proxy scores cell i as (i * 7) % 20, ties none.
    rows = [{"synflow": str((i * 7) % 20)} for i in range(20)]
    accuracy = np.arange(20) / 100
    lines = zero_cost_nb201.search_table(rows, ["synflow"], accuracy)
    table = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in lines if line.startswith("| ")}
    # Group 0 (cells 0-9): scores 0,7,14,1,8,15,2,9,16,3 -> cell 8 (0.08); group 1
    # (cells 10-19): scores 10,17,4,11,18,5,12,19,6,13 -> cell 17 (0.17).
    assert "| 8.00 | 12.50 ± 6.36 (2) |" in table[("synflow", "10")]
    assert "| 9.00 | 14.00 ± 7.07 (2) |" in table[("table (best by accuracy)", "10")]
    assert "| 0.00 | 5.00 ± 7.07 (2) |" in table[("random pick (the group's first cell)", "10")]
    assert ("synflow", "100") not in table  # More than the cells scored: no row.
