"""Reruns the README's headline commands and compares what they give with the numbers the
README's results table quotes (quoted numbers that stay true).

  python bench/claims.py          # the default search and random search, its budget (~7 min)
  python bench/claims.py --slow   # also the NAS-Bench-201 assessment (30 seeds) and ENAS

Each claim reads its numbers out of its README row (so a new measurement is quoted in
one place, the README or the page it links to, and checked here), reruns the command in a
temporary folder, and reports each number as

  same     equal to the digits the README quotes;
  close    within the claim's CPU tolerance: trained children differ between processors
           (TensorFlow's oneDNN kernels sum in another order), so their last digits may;
  DIFFERS  beyond it.

Table lookups (NAS-Bench-201) must repeat exactly on every machine; a trained child's
accuracy exactly on the same machine, within 0.01 elsewhere (measured: 0.844 / 0.810 and
0.846 / 0.814 for the default search on two processors, BENCHMARKS §0). Wall-clock times
are printed, never compared. Writes bench/results/claims.md; exit status 1 when a number
differs.
"""

import argparse
import csv
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OUT = ROOT / "bench" / "results" / "claims.md"
TRAINED = 0.01  # Tolerance of a trained child's accuracy on another CPU.


def readme_row(start):
    """The cells of the README results row whose first cell starts with `start`."""
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(start):
            return cells
    raise SystemExit(f"README.md has no results row starting with {start!r}")


def numbers(text, pattern):
    """The groups of `pattern` in `text` (the README's markup dropped), as strings."""
    match = re.search(pattern, text.replace("**", ""))
    if not match:
        raise SystemExit(f"the README row no longer reads as expected ({pattern!r}): {text}")
    return list(match.groups())


def compare(quoted, value, tolerance):
    """same / close / DIFFERS: `value` rounded to the quoted digits, against them."""
    digits = len(quoted.split(".")[1]) if "." in quoted else 0
    if round(value, digits) == float(quoted):
        return "same"
    return "close" if abs(value - float(quoted)) <= tolerance else "DIFFERS"


def run(args, cwd=ROOT):
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - started


def train(folder, name, flags):
    seconds = run(["train.py", f"--logdir={folder}", f"--run_name={name}", *flags])
    with open(os.path.join(folder, name, "best.json")) as f:
        return json.load(f), seconds


def default_search(folder):
    """README: the default search (`make search`) and random search at its budget."""
    row = readme_row("the default search")[1]
    quoted = numbers(row, r"best child ([\d.]+) validation, ([\d.]+) test")
    quoted += numbers(row, r"same budget: ([\d.]+) / ([\d.]+)")
    controller, t1 = train(folder, "default", [])
    random, t2 = train(folder, "random", ["--flagfile=configs/random.flags"])
    got = [
        controller["search_val_accuracy"],
        controller["test_accuracy"],
        random["search_val_accuracy"],
        random["test_accuracy"],
    ]
    what = ["controller: best child, validation", "controller: retrained, test",
            "random: best child, validation", "random: retrained, test"]
    rows = [(w, q, g, compare(q, g, TRAINED)) for w, q, g in zip(what, quoted, got)]
    return "the default search (`make search`; `configs/random.flags`)", rows, t1 + t2


def enas(folder):
    """README: the ENAS preset (10,000 architectures scored with shared weights)."""
    row = readme_row("ENAS, weight sharing")[1]
    count, accuracy = numbers(row, r"([\d,]+) architectures in .*? the retrained pick ([\d.]+) test")
    best, seconds = train(folder, "enas", ["--flagfile=configs/enas.flags"])
    rows = [
        ("architectures scored", count, best["trials"], compare(count.replace(",", ""), best["trials"], 0)),
        ("the retrained pick, test", accuracy, best["test_accuracy"],
         compare(accuracy, best["test_accuracy"], TRAINED)),
    ]
    return "ENAS (`configs/enas.flags`)", rows, seconds


def nb201_assessment(folder):
    """README: the assessment on NAS-Bench-201 (30 seeds, 1,000 lookups each)."""
    row = readme_row("the assessment on NAS-Bench-201")[1]
    quoted = numbers(
        row,
        r"([\d.]+) ± ([\d.]+) against ([\d.]+) ± ([\d.]+) \(clean\), "
        r"([\d.]+) ± ([\d.]+) against ([\d.]+) ± ([\d.]+) \(`none` poisoned\).*?"
        r"poison rate ([\d.]+) against ([\d.]+)",
    )
    out = os.path.join(folder, "assess-nb201")
    seconds = run(["assess.py", "--flagfile=configs/assess-nb201.flags", f"--out={out}"])
    picks, rates = {}, {}
    with open(os.path.join(out, "benchmark.csv"), newline="") as f:
        for r in csv.DictReader(f):
            if r["budget"] == "1000":
                key = (r["setting"], r["strategy"])
                picks.setdefault(key, []).append(100 * float(r["pick_accuracy"]))
                if r["poison_rate_q4"]:
                    rates.setdefault(key, []).append(float(r["poison_rate_q4"]))
    import numpy as np  # pylint: disable=import-outside-toplevel

    poisoned = next(s for s, _ in picks if s != "clean")
    got, what = [], []
    for setting in ("clean", poisoned):
        for strategy in ("controller", "random"):
            values = np.array(picks[(setting, strategy)])
            got += [values.mean(), values.std(ddof=1)]
            what += [f"{setting}, {strategy}: mean pick", f"{setting}, {strategy}: sd"]
    for strategy in ("controller", "random"):
        got.append(float(np.mean(rates[(poisoned, strategy)])))
        what.append(f"{poisoned}, {strategy}: last-quarter poison rate")
    rows = [(w, q, g, compare(q, g, 0)) for w, q, g in zip(what, quoted, got)]
    return "the assessment on NAS-Bench-201 (`configs/assess-nb201.flags`)", rows, seconds


def _processor():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="also the NB201 assessment and ENAS")
    args = parser.parse_args()
    claims = [default_search] + ([nb201_assessment, enas] if args.slow else [])
    lines = [
        "# The README's numbers, rerun",
        "",
        f"`python bench/claims.py{' --slow' if args.slow else ''}` on {_processor()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}. Tolerance of a trained child's "
        f"accuracy on another CPU: {TRAINED}; table lookups: none.",
        "",
    ]
    failed = False
    with tempfile.TemporaryDirectory(prefix="claims-") as folder:
        for claim in claims:
            title, rows, seconds = claim(folder)
            first = len(lines)
            lines += [f"## {title}", "", f"Rerun in {seconds:.0f} s (not compared).", "",
                      "| number | README | rerun | |", "| --- | --- | --- | --- |"]
            for what, quoted, got, verdict in rows:
                shown = got if isinstance(got, int) else f"{got:.4f}"
                lines.append(f"| {what} | {quoted} | {shown} | {verdict} |")
                failed |= verdict == "DIFFERS"
            lines.append("")
            print("\n".join(lines[first:]), flush=True)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT.relative_to(ROOT)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
