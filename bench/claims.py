"""The README's results table, one run per row: each row's record names its run (date,
commit, command) and holds the numbers the row quotes; the reruns of the headline commands
compare what they give now with those numbers.

  python bench/claims.py --record [NAME ...]   # write bench/results/claims/NAME.json
  python bench/claims.py          # rerun the default search and random search (~7 min), compare
  python bench/claims.py --slow   # also the NAS-Bench-201 assessment (30 seeds) and ENAS

Every row of the README's results table has a claim below (CLAIMS): the row it backs (the
start of its first cell), a pattern that reads the numbers the row quotes out of its result
cell, in order, the results files of one run and a function that computes the same numbers
from them. `--record` writes the claim's record, bench/results/claims/NAME.json: the run's
date, commit and command, its results files and its numbers. Most claims read results already
in the repository (no run); two rerun their command first (`default_search`: train.py twice,
about 6 min; `enas`: the ENAS preset, about 17 min), write the runs' best.json beside the
record and record `git rev-parse HEAD` and the day (a tree with changes to tracked files other
than pages, tests and results is refused; `--dirty` records it anyway and says so in the record). tests/test_docs.py checks
each README row against its record, to the digits the row quotes, and recomputes each record
from its files.

Without `--record`, each rerun claim reruns its command in a temporary folder and reports
each number the README quotes as

  same     equal to the digits the README quotes;
  close    within the claim's CPU tolerance: trained children differ between processors
           (TensorFlow's oneDNN kernels sum in another order), so their last digits may;
  DIFFERS  beyond it.

Table lookups (NAS-Bench-201) must repeat exactly on every machine; a trained child's
accuracy exactly on the same machine, within 0.01 elsewhere (measured: 0.844 / 0.810 and
0.846 / 0.814 for the default search on two processors, docs/LOG.md §0). Wall-clock times
are printed, never compared. Writes bench/results/claims.md; exit status 1 when a number
differs.
"""

import argparse
import csv
import dataclasses
import json
import math
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OUT = ROOT / "bench" / "results" / "claims.md"
RECORDS = ROOT / "bench" / "results" / "claims"
TRAINED = 0.01  # Tolerance of a trained child's accuracy on another CPU.
# A number as a row writes one: 10,000; 0.810; 1e-7; 8.3e-10.
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e-?\d+)?"


# --- the README's rows and the digits they quote -------------------------------------------

def readme_rows(text=None):
    """{first cell: cells} of the README's results table."""
    text = README.read_text() if text is None else text
    table = text.split("## Results", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if cells[0] != "what":
                rows[cells[0]] = cells
    return rows


def readme_row(start, text=None):
    """The cells of the README results row whose first cell starts with `start`."""
    for first, cells in readme_rows(text).items():
        if first.startswith(start):
            return cells
    raise SystemExit(f"README.md has no results row starting with {start!r}")


def plain(cell):
    return cell.replace("**", "")


def quoted_numbers(claim, text=None):
    """The numbers `claim`'s row quotes, as written, with their spans in the plain result cell."""
    result = plain(readme_row(claim.row, text)[1])
    match = re.search(claim.pattern, result)
    if not match:
        raise ValueError(f"the README row {claim.row!r} no longer reads as {claim.pattern!r}: {result}")
    return result, [(match.group(i), match.span(i)) for i in range(1, len(match.groups()) + 1)]


def value_of(quoted):
    """A quoted number as a float: '10,000' -> 10000, '10 min 18 s' -> 618, '1e-7'."""
    minutes = re.fullmatch(r"(\d+) min (\d+) s", quoted)
    if minutes:
        return 60.0 * int(minutes.group(1)) + int(minutes.group(2))
    return float(quoted.replace(",", ""))


def agrees(quoted, value, bound=None):
    """Whether `value` written at the digits of `quoted` is `quoted` (or within its bound)."""
    if re.fullmatch(r"\d+ min \d+ s", quoted):
        shown = float(round(value))
    elif "e" in quoted:
        digits = len(quoted.split("e")[0].replace(".", "")) - 1
        shown = float(f"{value:.{digits}e}")
    else:
        digits = len(quoted.split(".")[1]) if "." in quoted else 0
        shown = round(value, digits)
    quoted_value = value_of(quoted)
    if bound == "<":
        return value < quoted_value
    if bound == "≤":
        return shown <= quoted_value
    return math.isclose(shown, quoted_value, rel_tol=1e-9, abs_tol=1e-15)


def compare(quoted, value, tolerance):
    """same / close / DIFFERS: `value` rounded to the quoted digits, against them."""
    if agrees(quoted, value):
        return "same"
    return "close" if abs(value - value_of(quoted)) <= tolerance else "DIFFERS"


# --- reading results files -------------------------------------------------------------------

def md_tables(path, heading=None):
    """The tables of a markdown file (under `heading`, to the next heading of its level, if
    given), each a list of {column: cell}."""
    lines = pathlib.Path(path).read_text().splitlines()
    if heading:
        start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading)
        level = len(lines[start]) - len(lines[start].lstrip("#"))
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("#")
                    and len(lines[j]) - len(lines[j].lstrip("#")) <= level), len(lines))
        lines = lines[start:end]
    tables, header = [], None
    for line in lines:
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables.append([])
        elif not set(line) <= set("|-: "):
            tables[-1].append(dict(zip(header, cells)))
    return tables


def md_row(path, column, value, heading=None, table=None):
    """The first table row whose `column` is `value`."""
    tables = md_tables(path, heading)
    for rows in ([tables[table]] if table is not None else tables):
        for row in rows:
            if row.get(column) == value:
                return row
    raise ValueError(f"{path}: no row with {column} = {value!r}")


def mean_sd(cell):
    """'93.77 +- 0.33' or '93.77 ± 0.33' -> (93.77, 0.33)."""
    mean, sd = re.split(r"\s*(?:\+-|±)\s*", cell.strip().strip("*"))
    return float(mean), float(sd)


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def picks(rows, setting, strategy, budget, column="pick_accuracy", scale=100.0):
    return [scale * float(r[column]) for r in rows
            if r["setting"] == setting and r["strategy"] == strategy and r["budget"] == str(budget)]


def stats(values):
    """Mean and sample standard deviation."""
    n = len(values)
    mean = sum(values) / n
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5


def assess_p(md, setting, strategy, budget):
    """The p against random search of an assess.py benchmark.md row."""
    row = next(r for r in md_tables(md, setting)[0]
               if r["strategy"] == strategy and r["budget"].split(" ")[0] == str(budget))
    return float(row["p vs random"])


def best_json(path):
    with open(path) as f:
        return json.load(f)


# --- the claims: one per row of the README's results table ----------------------------------

@dataclasses.dataclass
class Claim:
    name: str
    row: str  # The start of the README row's first cell.
    pattern: str  # Over the row's result cell (bold dropped): one group per quoted number.
    results: list  # Repository-relative files of one run.
    command: str
    read: Callable  # (paths of `results`) -> [(what, value) or (what, value, bound)]
    rerun: Optional[Callable] = None  # (folder) -> seconds: writes `results`' names in folder.
    record_by_rerun: bool = False  # --record reruns the command (else: reads `results`).
    tolerance: float = 0.0  # Of compare mode: trained children differ between CPUs.
    times: tuple = ()  # Indices of the numbers that are wall-clock times: never compared.
    date: Optional[str] = None  # Of a committed run whose page names it; else git's.
    commit: Optional[str] = None
    commit_note: Optional[str] = None


def _train(folder, name, flags):
    started = time.perf_counter()
    run(["train.py", f"--logdir={folder}", f"--run_name={name}", *flags])
    return time.perf_counter() - started


def rerun_default(folder):
    seconds = _train(folder, "default", [])
    seconds += _train(folder, "random", ["--flagfile=configs/random.flags"])
    for name in ("default", "random"):
        shutil.copy(os.path.join(folder, name, "best.json"), os.path.join(folder, f"{name}.best.json"))
    return seconds


def read_default(paths):
    controller, random = (best_json(p) for p in paths)
    return [("controller: best child, validation", controller["search_val_accuracy"]),
            ("controller: retrained, test", controller["test_accuracy"]),
            ("random search: best child, validation", random["search_val_accuracy"]),
            ("random search: retrained, test", random["test_accuracy"])]


def rerun_enas(folder):
    seconds = _train(folder, "enas", ["--flagfile=configs/enas.flags"])
    shutil.copy(os.path.join(folder, "enas", "best.json"), os.path.join(folder, "enas.best.json"))
    return seconds


def read_enas(paths):
    best = best_json(paths[0])
    return [("architectures scored", best["trials"]),
            ("search seconds", best["search_seconds"]),
            ("the retrained pick, test", best["test_accuracy"])]


def rerun_nb201(folder):
    started = time.perf_counter()
    run(["assess.py", "--flagfile=configs/assess-nb201.flags", f"--out={folder}"])
    for suffix in ("csv", "md"):  # The names the committed run's files have.
        shutil.copy(os.path.join(folder, f"benchmark.{suffix}"), os.path.join(folder, f"headline.{suffix}"))
    return time.perf_counter() - started


def read_nb201(paths):
    rows, md = csv_rows(paths[0]), paths[1]
    poisoned = next(r["setting"] for r in rows if r["setting"] != "clean")
    out = []
    for setting in ("clean", poisoned):
        for strategy in ("controller", "random"):
            mean, sd = stats(picks(rows, setting, strategy, 1000))
            out += [(f"{setting}, {strategy}, 1,000 queries: mean pick (%)", mean),
                    (f"{setting}, {strategy}: sd", sd)]
    p = max(assess_p(md, s, "controller", 1000) for s in ("clean", poisoned))
    out.append(("the larger p of the controller against random search (1,000 queries)", p, "<"))
    for strategy in ("controller", "random"):
        rate = stats(picks(rows, poisoned, strategy, 1000, "poison_rate_q4", 1.0))[0]
        out.append((f"{poisoned}, {strategy}: last-quarter poison rate", rate))
    return out


def read_table300(paths):
    rows = csv_rows(paths[0])
    out = []
    for strategy in ("evolution", "tpe", "controller"):
        mean, sd = stats(picks(rows, "clean", strategy, 300))
        out += [(f"clean, {strategy}, 300 queries: mean pick (%)", mean), (f"clean, {strategy}: sd", sd)]
    return out


def read_poison(paths):
    rows = csv_rows(paths[0])
    out = []
    for strategy in ("controller", "random"):
        mean, sd = stats([float(r["last_quarter_poison_rate"]) for r in rows if r["strategy"] == strategy])
        out += [(f"{strategy}: last-quarter poison rate, mean", mean), (f"{strategy}: sd", sd)]
    trials = {int(r["trials"]) for r in rows}
    assert len(trials) == 1, trials
    return out + [("children per run", trials.pop())]


def read_paper(paths):
    out, paper = [], []
    for method, name in (("random search (RS)", "random search"), ("REA", "REA"),
                         ("REINFORCE", "REINFORCE")):
        row = md_row(paths[0], "method", method)
        mean, sd = mean_sd(row["ours"])
        out += [(f"{name}: mean pick (%)", mean), (f"{name}: sd", sd)]
        paper.append((f"the paper's {name}: mean", mean_sd(row["paper (500 runs)"])[0]))
    return out + paper


def read_protocol(paths):
    rows, md = csv_rows(paths[0]), paths[1]
    setting = "poison-none-k5"
    return [("poisoned, controller: mean pick (%) at the budget's end", stats(picks(rows, setting, "controller", "end"))[0]),
            ("poisoned, random search: mean pick (%)", stats(picks(rows, setting, "random", "end"))[0]),
            ("p, controller against random search", assess_p(md, setting, "controller", "end")),
            ("controller: last-quarter poison rate",
             stats(picks(rows, setting, "controller", "end", "poison_rate_q4", 1.0))[0]),
            ("random search: last-quarter poison rate",
             stats(picks(rows, setting, "random", "end", "poison_rate_q4", 1.0))[0])]


def read_local_search(paths):
    md, strategy = paths[0], paths[1]
    lines = len(pathlib.Path(strategy).read_text().splitlines())
    rows = [r for r in md_tables(md, "clean")[0] if r["strategy"] == "LocalSearch"]
    random = {r["budget"]: mean_sd(r["pick acc"])[0] for r in md_tables(md, "clean")[0]
              if r["strategy"] == "random"}
    better = [r for r in rows
              if float(r["p vs random"]) < 0.05 and mean_sd(r["pick acc"])[0] > random[r["budget"]]]
    out = [("lines of examples/my_strategy.py", lines)]
    out += [("a budget at which it beats random search (p < 0.05), queries", int(r["budget"])) for r in better]
    out.append(("the largest p against random search", max(float(r["p vs random"]) for r in rows), "≤"))
    return out


def read_hardware(paths):
    rows, md = csv_rows(paths[0]), paths[1]
    controller = stats(picks(rows, "clean", "controller", 1000))[0]
    random = stats(picks(rows, "clean", "random", 1000))[0]
    optimum = {round(100 * (float(r["pick_accuracy"]) + float(r["regret"])), 3) for r in rows
               if float(r["pick_accuracy"]) > 0}
    assert len(optimum) == 1, optimum
    return [("controller: infeasible share, first quarter (1,000 queries)",
             stats(picks(rows, "clean", "controller", 1000, "infeasible_q1", 1.0))[0]),
            ("controller: infeasible share, last quarter",
             stats(picks(rows, "clean", "controller", 1000, "infeasible_q4", 1.0))[0]),
            ("random search's mean pick minus the controller's (points)", random - controller),
            ("controller: mean pick (%), 1,000 queries", controller),
            ("random search: mean pick (%)", random),
            ("p, controller against random search", assess_p(md, "clean", "controller", 1000)),
            ("tpe: mean pick (%)", stats(picks(rows, "clean", "tpe", 1000))[0]),
            ("p, tpe against random search", assess_p(md, "clean", "tpe", 1000)),
            ("the constrained optimum (%)", optimum.pop())]


def read_speed(paths):
    random = md_row(paths[0], "strategy", "random")
    controller = md_row(paths[0], "strategy", "controller")
    trials = {int(random["trials"].replace(",", "")), int(controller["trials"].replace(",", ""))}
    assert len(trials) == 1, trials
    return [("queries per strategy", trials.pop()),
            ("random search: loop seconds", float(random["loop (s)"])),
            ("controller: loop seconds", float(controller["loop (s)"]))]


def _rho(cell):
    """'0.742 [0.708, 0.772]' -> (0.742, 0.708, 0.772)."""
    return tuple(float(x) for x in re.findall(r"[\d.]+", cell))


def read_zero_cost(paths):
    synflow = md_row(paths[0], "proxy", "synflow")
    rho, low, high = _rho(synflow["Spearman rho [95% CI]"])
    return [("synflow: Spearman rho", rho), ("synflow: 95% interval, low", low),
            ("synflow: 95% interval, high", high),
            ("synflow: published rho", float(synflow["published rho"])),
            ("params: Spearman rho", _rho(md_row(paths[0], "proxy", "params")["Spearman rho [95% CI]"])[0])]


def read_zero_cost_cifar10(paths):
    rows = [r for r in md_tables(paths[0], "Against NASLib's scores of the same cells "
                                           "(300 of the 300 scored cells are among NASLib's 9,445)")[0]
            if r["ours"] != "params"]
    rhos = [_rho(r["ours vs NASLib's"])[0] for r in rows]
    return [("cells", 300), ("the lowest rho, ours against NASLib's (params aside)", min(rhos)),
            ("the highest", max(rhos))]


def read_compare(paths):
    out = []
    for method, name in (("controller (REINFORCE)", "the controller"), ("random search", "random search"),
                         ("Keras Tuner BayesianOptimization", "Keras Tuner's Bayesian optimization")):
        mean, sd = mean_sd(md_row(paths[0], "method", method)["test acc of pick"])
        out += [(f"{name}: test accuracy of the pick, mean", mean), (f"{name}: sd", sd)]
    best_kt = max((mean_sd(r["test acc of pick"])[0], r["method"]) for r in md_tables(paths[0])[0]
                  if r["method"].startswith("Keras Tuner"))
    assert best_kt[1] == "Keras Tuner BayesianOptimization", best_kt
    return out


def read_kt_oracles(paths):
    column = "N = 300: mean (sd) [interval], p"
    out, ps = [], []
    for oracle, name in (("ControllerOracle", "the controller"), ('StrategyOracle("evolution")', "evolution"),
                         ('StrategyOracle("tpe")', "TPE"), ("kt RandomSearchOracle", "Keras Tuner's random search")):
        cell = md_row(paths[0], "oracle", oracle)[column]
        out.append((f"{name}: mean best (%) of 300 trials", float(cell.split()[0])))
        if ", p " in cell:
            ps.append(float(cell.rsplit(", p ", 1)[1]))
    return out + [("the largest p against Keras Tuner's random search", max(ps), "≤")]


def read_faults(paths):
    rows = md_tables(paths[0])[0]
    return [("interruptions", sum(int(r["interruptions"]) for r in rows)),
            ("modes", len({r["mode"] for r in rows}))]


_GIT_NOTE = ("the commit that added the results file; the run's code is that commit's parent "
             "or its working tree (the run did not record its own commit)")

CLAIMS = [
    Claim("default_search", "the default search",
          r"best child (\S+) validation, (\S+) test; random search, same budget: (\S+) / (\S+) ",
          ["bench/results/claims/default_search/default.best.json",
           "bench/results/claims/default_search/random.best.json"],
          "python train.py; python train.py --flagfile=configs/random.flags",
          read_default, rerun_default, record_by_rerun=True, tolerance=TRAINED),
    Claim("enas", "ENAS, weight sharing",
          rf"({NUMBER}) architectures in (\d+ min \d+ s), the retrained pick (\S+) test",
          ["bench/results/claims/enas/enas.best.json"],
          "python train.py --flagfile=configs/enas.flags",
          read_enas, rerun_enas, record_by_rerun=True, tolerance=TRAINED, times=(1,)),
    Claim("nb201_assessment", "the assessment on NAS-Bench-201",
          r"(\S+) ± (\S+) against (\S+) ± (\S+) \(clean\), (\S+) ± (\S+) against (\S+) ± (\S+) "
          rf"\(`none` poisoned\), p < ({NUMBER}); last-quarter poison rate (\S+) against (\S+)$",
          ["bench/results/assess-nb201/headline.csv", "bench/results/assess-nb201/headline.md"],
          "python assess.py --flagfile=configs/assess-nb201.flags",
          read_nb201, rerun_nb201),
    Claim("nb201_table300", "every table strategy on NAS-Bench-201",
          r"pick the best cell \((\S+) ± (\S+), (\S+) ± (\S+)\) where the controller has (\S+) ± (\S+)$",
          ["bench/results/assess-nb201/table300.csv", "bench/results/assess-nb201/table300.md"],
          "python assess.py --flagfile=configs/assess-nb201.flags "
          "--strategies=controller,random,evolution,tpe --trials=300 --budgets=100,300 --jobs=1 "
          "--out=logs/assess-nb201-table300",
          read_table300, date="2026-12-07", commit="82eeb19d0cf91b5f68b7dbcc1fe02c5afb1ca2f2",
          commit_note="HEAD when the run started, the tree without changes to tracked files; one "
          "command for every strategy the row names (the earlier strategies.md and tpe300.md, two "
          "runs, gave the same 480 picks); benchmark.csv and benchmark.md copied from its folder"),
    Claim("poison_trained", "the assessment on trained children",
          r"poison rate (\S+) ± (\S+) against random's (\S+) ± (\S+):.* at (\d+) children$",
          ["bench/results/assess-poison/results.csv"],
          "python assess.py --out=logs/assess-poison --poison=dropout1.0,stretched3x3 "
          "--poison_instances=6 --seeds=0,1,2 --clean=false --trials=96 --children_per_step=4 "
          "--train_size=1500 --filters=8 --batch_size=32 --epochs=1 --final_epochs=3 --controller_lr=0.01",
          read_poison,
          commit_note=_GIT_NOTE + "; run as two processes, one per strategy (--strategies=controller "
          "and --strategies=random, the same folder), and the command above then read the six runs "
          "back (docs/ASSESSING.md)"),
    Claim("nb201_paper", "the NAS-Bench-201 paper's protocol",
          r"random search (\S+) ± (\S+), REA (\S+) ± (\S+), REINFORCE (\S+) ± (\S+) "
          r"\(paper: (\S+), (\S+), (\S+)\)$",
          ["bench/results/nb201_paper.md"],
          "python bench/nb201_paper.py --runs 500 --check_runs 100 --jobs 2",
          read_paper),
    Claim("nb201_protocol", "this project's strategies under that protocol",
          r"\((\S+) against (\S+), p (\S+)\).*\(last-quarter poison rate (\S+) against (\S+)\)$",
          ["bench/results/assess-nb201/protocol.csv", "bench/results/assess-nb201/protocol.md"],
          "python assess.py --flagfile=configs/assess-nb201-protocol.flags",
          read_protocol),
    Claim("local_search", "your own strategy in the assessment",
          rf"(\d+) lines of local search beat random search at (\d+), (\d+) and ({NUMBER}) queries "
          rf"\(p ≤ ({NUMBER})\)$",
          ["bench/results/assess-local-search-30/benchmark.md", "examples/my_strategy.py"],
          "python assess.py --space=nb201 --evaluation=benchmark --trials=1000 --budgets=100,300,1000 "
          "--strategies=random,controller,examples/my_strategy.py:LocalSearch "
          "--seeds=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29 "
          "--out=logs/assess-local-search-30",
          read_local_search, date="2026-12-06", commit="87880574d9bf5b473f8644afe51fb395e78ce4e8",
          commit_note="the commit docs/EXTENDING.md names for the run; benchmark.md and benchmark.csv "
          "copied from its folder on 2026-12-07 (the lines of examples/my_strategy.py are read from "
          "the file as it is)"),
    Claim("hardware_p25", "under a Pixel 3 latency budget",
          r"infeasible queries (\S+) in the first quarter, (\S+) in the last\) but its pick is (\S+) "
          r"points below random search's \((\S+) against (\S+), p (\S+)\); TPE (\S+) \(p (\S+)\); "
          r"the constrained optimum (\S+)$",
          ["bench/results/assess-hardware-p25/benchmark.csv", "bench/results/assess-hardware-p25/benchmark.md"],
          "python assess.py --flagfile=configs/assess-nb201-hardware.flags "
          "--max_cost=pixel3_latency:6.44112 --out=logs/assess-nb201-hardware-p25",
          read_hardware),
    Claim("nb201_speed", "NAS-Bench-201 lookups",
          rf"({NUMBER}) queries with every output on: random search (\S+) s, controller (\S+) s$",
          ["bench/results/nb201_speed.md"],
          "python bench/nb201_speed.py --trials 10000 --strategies random,controller",
          read_speed),
    Claim("zero_cost", "zero-cost proxies on NAS-Bench-201",
          r"rho (\S+) \[(\S+), (\S+)\] against the published (\S+); no better than the parameter "
          r"count \((\S+)\)$",
          ["bench/results/zero_cost_nb201.md"],
          "python bench/zero_cost_nb201.py --cells=1000 --proxies=synflow,params,flops",
          read_zero_cost, date="2026-12-02", commit="8ff520d00f067514a457b100b473e9f26dfd907f",
          commit_note="the commit that wrote the 1,000-cell results (the file was added with the first "
          "400 cells in ca88b13); the run's code is that commit's parent or its working tree; one "
          "command resumed over two sessions (400 cells, then 600: BENCHMARKS §2)"),
    Claim("zero_cost_cifar10", "zero-cost proxies with CIFAR-10 images",
          r"\((\d+) cells\) rank cells as NASLib's do \(rho (\S+)-(\S+);",
          ["bench/results/zero_cost_nb201_cifar10.md"],
          "python bench/zero_cost_nb201.py --cells=300 --proxies=naswot,synflow,snip,grad_norm,params "
          "--images=cifar10 --naslib_cells --name=zero_cost_nb201_cifar10",
          read_zero_cost_cifar10),
    Claim("keras_tuner_compare", "strategies against Keras Tuner",
          r"the controller's pick (\S+) ± (\S+) test accuracy, random search's (\S+) ± (\S+), "
          r"Keras Tuner's best \(Bayesian optimization\) (\S+) ± (\S+):",
          ["bench/results/compare_toy.md"],
          "python bench/compare.py",
          read_compare),
    Claim("keras_tuner_oracles", "the strategies as Keras Tuner oracles",
          rf"the controller (\S+), evolution (\S+), TPE (\S+) against Keras Tuner's random search "
          rf"(\S+) \(p ≤ ({NUMBER})\)$",
          ["bench/results/keras_tuner_nb201.md"],
          "python bench/keras_tuner_nb201.py --seeds 30 --trials 300 --budgets 50,100,300",
          read_kt_oracles),
    Claim("faults", "interruptions",
          r"^(\d+) interruptions over (\d+) modes",
          ["bench/results/faults_long.md"],
          "python bench/faults.py --runs=1 --cuts=5 --seed=2029",
          read_faults, date="2026-12-02", commit="7b57b96c1fb5382839f6ec0fdcd95ff660f35085",
          commit_note="the commit bench/results/faults_long.md names; the harness split by mode over "
          "three processes run side by side, with --seed=2030 for the controller, controller-1-worker "
          "and controller-2-workers runs whose cuts had all come after the run's end; its lines summed"),
]
BY_NAME = {c.name: c for c in CLAIMS}


def record_path(claim):
    return RECORDS / f"{claim.name}.json"


def numbers_of(claim, folder=None):
    """The claim's numbers from its results files (in `folder` by their names, if given)."""
    paths = [pathlib.Path(folder) / pathlib.Path(r).name if folder else ROOT / r for r in claim.results]
    out = []
    for entry in claim.read(paths):
        number = {"what": entry[0], "value": float(entry[1])}
        if len(entry) > 2:
            number["bound"] = entry[2]
        out.append(number)
    return out


# --- running ---------------------------------------------------------------------------------

def run(args, cwd=ROOT):
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - started


def _git(*args):
    # Trailing newlines only: `status --porcelain` lines begin with a space when the change
    # is not staged (" M path"), and the path is read from the fourth character.
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.rstrip("\n")


def record(claim, dirty_ok=False):
    """Writes the claim's record (rerunning its command first if it is a rerun claim)."""
    if claim.record_by_rerun:
        # Changes to what a run does not execute (pages, tests, results) leave its code as committed.
        changed = "\n".join(
            line for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()
            if not (line[3:].endswith(".md") or line[3:].startswith(("tests/", "bench/results/"))))
        if changed and not dirty_ok:
            raise SystemExit(f"{claim.name}: the tree has changes to tracked files; commit them "
                             f"(or pass --dirty, which the record then says):\n{changed}")
        commit, date = _git("rev-parse", "HEAD"), time.strftime("%Y-%m-%d")
        folder = ROOT / pathlib.Path(claim.results[0]).parent
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="claims-") as scratch:
            seconds = claim.rerun(scratch)
            for name in claim.results:
                shutil.copy(pathlib.Path(scratch) / pathlib.Path(name).name, ROOT / name)
        note = (f"rerun by `python bench/claims.py --record {claim.name}` on {processor()}, "
                f"{os.cpu_count()} CPUs ({seconds:.0f} s in all)")
        if changed:
            note += "; the tree had changes to tracked files (--dirty): " + " ".join(
                line[3:] for line in changed.splitlines())
    else:
        commit, date = claim.commit, claim.date
        if commit is None:
            found = _git("log", "--diff-filter=A", "--format=%H %ad", "--date=short", "--",
                         claim.results[0]).splitlines()
            if not found:
                raise SystemExit(f"{claim.name}: {claim.results[0]} is not committed yet")
            commit, date = found[-1].split()
        note = claim.commit_note or _GIT_NOTE
    data = {"name": claim.name, "row": claim.row, "date": date, "commit": commit,
            "commit_note": note, "command": claim.command, "results": claim.results,
            "numbers": numbers_of(claim)}
    RECORDS.mkdir(parents=True, exist_ok=True)
    record_path(claim).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {record_path(claim).relative_to(ROOT)}: {date} {commit}")
    try:
        _, quoted = quoted_numbers(claim)
    except (ValueError, SystemExit) as error:
        print(f"  {error}")
        return
    for (text, _), number in zip(quoted, data["numbers"]):
        try:
            same = agrees(text, number["value"], number.get("bound"))
        except ValueError:
            same = False
        if not same:
            print(f"  the README quotes {text} where the record has {number['value']} "
                  f"({number['what']}): update the row")


def processor():
    """The machine's processor, as /proc/cpuinfo names it (bench/suite_profile.py too)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def compare_claim(claim, folder):
    """Reruns `claim`'s command in `folder` and compares its numbers with the README's."""
    os.makedirs(folder, exist_ok=True)
    seconds = claim.rerun(folder)
    _, quoted = quoted_numbers(claim)
    rows = []
    for i, ((text, _), number) in enumerate(zip(quoted, numbers_of(claim, folder))):
        if i in claim.times:
            verdict = "(a time: not compared)"
        elif number.get("bound"):
            verdict = "same" if agrees(text, number["value"], number["bound"]) else "DIFFERS"
            text = f"{number['bound']} {text}"
        else:
            verdict = compare(text, number["value"], claim.tolerance)
        rows.append((number["what"], text, number["value"], verdict))
    return f"{claim.row} (`{claim.command}`)", rows, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="also the NB201 assessment and ENAS")
    parser.add_argument("--record", nargs="*", metavar="NAME",
                        help=f"write the records of these claims (all if none): {', '.join(BY_NAME)}")
    parser.add_argument("--dirty", action="store_true", help="record a rerun from a tree with changes")
    args = parser.parse_args()
    if args.record is not None:
        unknown = set(args.record) - set(BY_NAME)
        if unknown:
            parser.error(f"no claim named {', '.join(sorted(unknown))}")
        for name in args.record or [c.name for c in CLAIMS if not c.record_by_rerun]:
            record(BY_NAME[name], args.dirty)
        return
    claims = [BY_NAME["default_search"]]
    if args.slow:
        claims += [BY_NAME["nb201_assessment"], BY_NAME["enas"]]
    lines = [
        "# The README's numbers, rerun",
        "",
        f"`python bench/claims.py{' --slow' if args.slow else ''}` on {processor()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, commit {_git('rev-parse', '--short', 'HEAD')}. "
        f"Tolerance of a trained child's accuracy on another CPU: {TRAINED}; table lookups: none.",
        "",
    ]
    failed = False
    with tempfile.TemporaryDirectory(prefix="claims-") as folder:
        for claim in claims:
            title, rows, seconds = compare_claim(claim, os.path.join(folder, claim.name))
            first = len(lines)
            lines += [f"## {title}", "", f"Rerun in {seconds:.0f} s (not compared).", "",
                      "| number | README | rerun | |", "| --- | --- | --- | --- |"]
            for what, quoted, got, verdict in rows:
                shown = f"{got:.0f}" if got == int(got) else f"{got:.4f}"
                lines.append(f"| {what} | {quoted} | {shown} | {verdict} |")
                failed |= verdict == "DIFFERS"
            lines.append("")
            print("\n".join(lines[first:]), flush=True)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT.relative_to(ROOT)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
