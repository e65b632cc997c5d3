"""HW-NAS-Bench: the hardware cost of every NAS-Bench-201 cell on six devices.

The table (`embedded/nb201_hardware_cifar10.csv.gz`, attribution in `embedded/README.md`)
holds, for each of the 15,625 cells at the CIFAR-10 input size (32x32x3, the benchmark's
network with C = 16, N = 5), the latency and energy of one inference measured on real
devices (an NVIDIA Jetson TX2 edge GPU, a Raspberry Pi 4, a Google Edge TPU, a Pixel 3
phone) or simulated (the Eyeriss ASIC, an FPGA) by the HW-NAS-Bench authors (Li et al.,
"HW-NAS-Bench: Hardware-Aware Neural Architecture Search Benchmark", ICLR 2021). The
Edge TPU has no measurement of 4,699 cells: their cost there is unknown (NaN), and a
budget on it holds none of them.

`COSTS` names each column as a cost a search can be constrained by (`--max_cost`,
`--cost_target`); `costs_by_row()` reads them once per process, each cell's string
checked against the NAS-Bench-201 table's row.

Pure Python and NumPy: no Keras.
"""

import functools
import os

import numpy as np

import nb201

DATASET = "cifar10"  # The input size the costs were measured at.
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedded", "nb201_hardware_cifar10.csv.gz")


# The table's costs: {column: (unit, what it is)}. The Eyeriss arithmetic intensity (a
# ratio, not a cost) is left out.
COSTS = {
    "edgegpu_latency": ("ms", "latency on an NVIDIA Jetson TX2 edge GPU (measured)"),
    "edgegpu_energy": ("mJ", "energy on an NVIDIA Jetson TX2 edge GPU (measured)"),
    "raspi4_latency": ("ms", "latency on a Raspberry Pi 4 (measured)"),
    "edgetpu_latency": ("ms", "latency on a Google Edge TPU (measured; 4,699 cells unmeasured)"),
    "pixel3_latency": ("ms", "latency on a Pixel 3 phone (measured)"),
    "eyeriss_latency": ("ms", "latency on the Eyeriss ASIC (simulated)"),
    "eyeriss_energy": ("mJ", "energy on the Eyeriss ASIC (simulated)"),
    "fpga_latency": ("ms", "latency on an FPGA (simulated)"),
    "fpga_energy": ("mJ", "energy on an FPGA (simulated)"),
}


@functools.lru_cache(maxsize=None)
def costs_by_row(path=PATH):
    """{cost: float array by NAS-Bench-201 row (NaN where not measured)}, read once.

    Raises:
      nb201.BenchmarkError: a file that cannot be read, lacks a column or a row, or
        lists a cell at another row than the NAS-Bench-201 table.
    """
    header, rows = nb201.read_csv(path, "the HW-NAS-Bench table")
    missing = [c for c in ("ArchitectureString", *COSTS) if c not in header]
    if missing or len(rows) != nb201.CELLS:
        raise nb201.BenchmarkError(
            f"the HW-NAS-Bench table {path} lacks the columns {missing} or has {len(rows)} rows, "
            f"expected {nb201.CELLS}"
        )
    at = {c: header.index(c) for c in header}
    if [r[at["ArchitectureString"]] for r in rows] != nb201.load_table().strings:
        raise nb201.BenchmarkError(f"the HW-NAS-Bench table {path} does not list the cells in the table's order")
    costs = {}
    for name in COSTS:
        values = np.array([float(r[at[name]]) for r in rows])
        values[values < 0] = np.nan  # -1: not measured.
        costs[name] = values
    return costs
