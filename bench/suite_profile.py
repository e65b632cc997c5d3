"""Where the test suite's time goes: `make test` run with every Python process's CPU logged.

  python bench/suite_profile.py --clone=/tmp/fresh > bench/results/suite_profile.md

runs `make test` (TEST_WORKERS as set) in a clone (a fresh one, for the number BENCHMARKS.md
quotes; nothing else should run meanwhile), with `bench/suite_profile/` on PYTHONPATH: its
sitecustomize logs each Python process's CPU at exit. Then it reports the wall time, the CPU
of the whole run, the CPU by kind of process (the pytest workers' own work, train.py,
assess.py, ...), the costliest processes, each test module's time in its worker (junit) and
how many processes ran at once over the run. `--log` re-reports an earlier log instead.
The CPU it counts is the logged processes' only: a process killed with SIGKILL writes no line,
and Ray's own programs (raylet, the GCS) are not Python; `/usr/bin/time make test` gives the
whole.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))


def read_log(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 9:
                continue
            start, end, user, system, cuser, csystem = map(float, parts[:6])
            rows.append(dict(start=start, end=end, own=user + system, children=cuser + csystem,
                             pid=int(parts[6]), ppid=int(parts[7]), argv=parts[8]))
    return rows


def kind(argv):
    """A process's kind: the script it ran, or `pytest worker` for xdist's."""
    words = argv.split()
    if not words or words[0] == "-c":
        return "python -c (the pytest workers, their own work)"
    return os.path.basename(words[0])


def report(rows, junit, wall):
    own = sum(r["own"] for r in rows)
    print(f"Wall {wall:.0f} s; CPU of the logged processes {own:.0f} s "
          f"({100 * own / max(wall, 1e-9):.0f}% of one core); both cores busy throughout: {own / 2:.0f} s.\n")
    by = collections.defaultdict(lambda: [0, 0.0])
    for r in rows:
        k = kind(r["argv"])
        by[k][0] += 1
        by[k][1] += r["own"]
    print("| process | count | own CPU, s |\n| --- | --- | --- |")
    for k, (n, cpu) in sorted(by.items(), key=lambda i: -i[1][1])[:15]:
        print(f"| {k} | {n} | {cpu:.0f} |")
    print("\nThe costliest processes (own CPU, s):\n")
    for r in sorted(rows, key=lambda r: -r["own"])[:25]:
        print(f"- {r['own']:.1f}: `{r['argv'][:160]}`")
    if junit and os.path.exists(junit):
        modules = collections.Counter()
        counts = collections.Counter()
        for case in ET.parse(junit).iter("testcase"):
            name = case.get("classname", "").split(".")[-1]
            modules[name] += float(case.get("time", 0))
            counts[name] += 1
        print("\nTest modules by time in their worker (junit; waiting for background jobs counts):\n")
        print("| module | tests | s |\n| --- | --- | --- |")
        for name, seconds in modules.most_common(15):
            print(f"| {name} | {counts[name]} | {seconds:.0f} |")
    if rows:
        t0 = min(r["start"] for r in rows)
        t1 = max(r["end"] for r in rows)
        print("\nProcesses alive (not counting the pytest workers), per tenth of the run:\n")
        tenths = []
        for i in range(10):
            a, b = t0 + (t1 - t0) * i / 10, t0 + (t1 - t0) * (i + 1) / 10
            alive = [r for r in rows if r["start"] < b and r["end"] > a and not kind(r["argv"]).startswith("python -c")]
            tenths.append(str(len(alive)))
        print(" / ".join(tenths))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clone", default=".", help="the clone to run `make test` in")
    parser.add_argument("--log", help="report this log of an earlier run instead of running")
    parser.add_argument("--junit", help="the junit XML of that run")
    args = parser.parse_args()
    if args.log:
        rows = read_log(args.log)
        wall = max(r["end"] for r in rows) - min(r["start"] for r in rows) if rows else 0.0
        report(rows, args.junit, wall)
        return
    folder = tempfile.mkdtemp(prefix="suite-profile-")
    log, junit = os.path.join(folder, "processes.tsv"), os.path.join(folder, "junit.xml")
    env = dict(os.environ, SUITE_PROFILE_LOG=log, PYTEST_ADDOPTS=f"--junitxml={junit}")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(HERE, "suite_profile"), env.get("PYTHONPATH")) if p)
    started = time.time()
    done = subprocess.run(["make", "test"], cwd=args.clone, env=env, capture_output=True, text=True)
    wall = time.time() - started
    print(f"# The suite's time: `make test` in {args.clone}, exit status {done.returncode}\n")
    print(f"Command: `python bench/suite_profile.py --clone={args.clone}`; log in {log}.\n")
    print("```\n" + "\n".join(done.stdout.strip().splitlines()[-2:]) + "\n```\n")
    report(read_log(log), junit, wall)
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
