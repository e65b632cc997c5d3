"""Where the test suite's time goes: `make test` run with every Python process's CPU logged.

  python bench/suite_profile.py --clone=/tmp/fresh > bench/results/suite_profile.md

runs `make test` (TEST_WORKERS as set) in a clone (a fresh one, for the number BENCHMARKS.md
quotes; nothing else should run meanwhile), with `bench/suite_profile/` on PYTHONPATH: its
sitecustomize logs each Python process's CPU at exit. Then it reports the wall time, the CPU
of the whole run, the CPU by kind of process (the pytest workers' own work, train.py,
assess.py, ...), the costliest processes, each test module's time in its worker (junit), the
tests' own CPU in their pytest process (tests/conftest.py logs it when SUITE_PROFILE_TESTS names
a file) and how many processes ran at once over the run. `--log` re-reports an earlier log instead.
The CPU it counts per process is the logged processes' only: a process killed with SIGKILL
writes no line, and Ray's own programs (raylet, the GCS) are not Python; the machine's busy CPU,
sampled every second from /proc/stat, gives the whole and the idle cores per tenth of the run.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

from claims import processor  # bench/claims.py: the processor a record names, the same way.

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


def machine_cpu():
    """(busy, all) CPU seconds of the whole machine since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


class Sampler(threading.Thread):
    """The machine's busy CPU every second while the suite runs: unlike the process log,
    it sees every process (Ray's own programs, those killed with SIGKILL) and the idle
    cores."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.stop = path, threading.Event()
        self.processes = {}  # (pid, start time) -> [CPU seconds since the first snapshot, argv]
        self.before = None  # (pid, start time) -> CPU seconds at the first snapshot

    def run(self):
        with open(self.path, "w") as f:
            while not self.stop.is_set():
                sample = machine_cpu()
                if sample:
                    f.write(f"{time.time()}\t{sample[0]}\t{sample[1]}\n")
                    f.flush()
                self.snapshot()
                self.stop.wait(1.0)

    def snapshot(self):
        """Every process's CPU since the suite started (/proc/PID/stat), kept at its last
        value: a process that ends between two snapshots loses at most its last second."""
        first = self.before is None
        if first:
            self.before = {}
        hz = os.sysconf("SC_CLK_TCK")
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / hz
                key = (int(name), fields[19])  # A reused pid starts at another time.
                if first:
                    self.before[key] = cpu
                cpu -= self.before.get(key, 0.0)
                if key not in self.processes:
                    with open(f"/proc/{name}/cmdline", "rb") as f:
                        argv = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    self.processes[key] = [cpu, argv]
                self.processes[key][0] = cpu
            except (OSError, IndexError, ValueError):
                continue


def sampled_report(processes, logged_pids):
    """CPU by kind of every process seen by the sampler, and those the log missed."""
    by, missed = collections.defaultdict(lambda: [0, 0.0]), collections.defaultdict(lambda: [0, 0.0])
    for (pid, _), (cpu, argv) in processes.items():
        words = argv.split()
        if words and os.path.basename(words[0]).startswith("python"):
            words = words[1:]
        k = kind(" ".join(words)) if words else "(kernel threads)"
        by[k][0] += 1
        by[k][1] += cpu
        if pid not in logged_pids:
            missed[k][0] += 1
            missed[k][1] += cpu
    total = sum(cpu for cpu, _ in processes.values())
    print(f"\nEvery process the sampler saw (/proc, once a second): {total:.0f} s of CPU; by kind, "
          f"and the part the log above missed (SIGKILL, os._exit, not Python):\n")
    print("| process | count | CPU, s | not logged: count | CPU, s |\n| --- | --- | --- | --- | --- |")
    for k, (n, cpu) in sorted(by.items(), key=lambda i: -i[1][1])[:20]:
        m = missed.get(k, [0, 0.0])
        print(f"| {k[:60]} | {n} | {cpu:.0f} | {m[0]} | {m[1]:.0f} |")


def machine_report(path):
    """Busy core-seconds of the machine in all and per tenth of the run, from `Sampler`."""
    with open(path) as f:
        samples = [tuple(map(float, line.split("\t"))) for line in f if line.count("\t") == 2]
    if len(samples) < 10:
        return
    t0, b0, a0 = samples[0]
    t1, b1, a1 = samples[-1]
    cores = os.cpu_count() or 1
    print(f"\nThe whole machine (/proc/stat, every process): {b1 - b0:.0f} s of CPU busy in "
          f"{t1 - t0:.0f} s on {cores} cores, {100 * (b1 - b0) / (a1 - a0):.0f}% of what they could do. "
          f"Busy, per tenth of the run:\n")
    tenths = []
    for i in range(10):
        part = [s for s in samples if t0 + (t1 - t0) * i / 10 <= s[0] <= t0 + (t1 - t0) * (i + 1) / 10]
        if len(part) >= 2:
            tenths.append(f"{100 * (part[-1][1] - part[0][1]) / max(part[-1][2] - part[0][2], 1e-9):.0f}%")
    print(" / ".join(tenths))


def kind(argv):
    """A process's kind: the script it ran, or `pytest worker` for xdist's."""
    words = argv.split()
    if not words or words[0] == "-c":
        return "python -c (the pytest workers, their own work)"
    return os.path.basename(words[0])


def tests_report(path):
    """The tests' own CPU in their pytest process (tests/conftest.py's per-test log)."""
    if not path or not os.path.exists(path):
        return
    tests = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                tests.append((parts[0], float(parts[1]), float(parts[2])))
    modules = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for nodeid, cpu, wall in tests:
        m = modules[nodeid.split("::")[0]]
        m[0] += 1
        m[1] += cpu
        m[2] += wall
    total = sum(cpu for _, cpu, _ in tests)
    print(f"\nThe tests' own CPU in their pytest process ({total:.0f} s in all; the subprocesses they "
          "start are in the tables above):\n")
    print("| module | tests | own CPU, s | wall, s |\n| --- | --- | --- | --- |")
    for name, (n, cpu, wall) in sorted(modules.items(), key=lambda i: -i[1][1])[:20]:
        print(f"| {name} | {n} | {cpu:.0f} | {wall:.0f} |")
    print("\nThe costliest tests in-process (own CPU, s; wall, s):\n")
    for nodeid, cpu, wall in sorted(tests, key=lambda t: -t[1])[:25]:
        print(f"- {cpu:.1f} ({wall:.1f}): `{nodeid[:150]}`")


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


# A fixed piece of pure-Python work: its CPU seconds say how fast this machine runs at the
# moment. The same commands cost 30-40% more CPU in one session than in another (the
# machine is lent from a pool: another session had an Intel Xeon, this one an AMD EPYC), so
# two suite times compare only beside their processors and calibrations.
CALIBRATION = "sum(i * i for i in range(20_000_000))"


def calibrate(runs=3):
    """The median CPU seconds of CALIBRATION in a fresh Python (its start-up included)."""
    import resource  # pylint: disable=import-outside-toplevel

    seconds = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", CALIBRATION], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return sorted(seconds)[len(seconds) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clone", default=".", help="the clone to run `make test` in")
    parser.add_argument("--log", help="report this log of an earlier run instead of running")
    parser.add_argument("--junit", help="the junit XML of that run")
    parser.add_argument("--tests", help="the per-test CPU log of that run (tests.tsv)")
    args = parser.parse_args()
    if args.log:
        rows = read_log(args.log)
        wall = max(r["end"] for r in rows) - min(r["start"] for r in rows) if rows else 0.0
        report(rows, args.junit, wall)
        tests_report(args.tests)
        return
    folder = tempfile.mkdtemp(prefix="suite-profile-")
    log, junit = os.path.join(folder, "processes.tsv"), os.path.join(folder, "junit.xml")
    tests = os.path.join(folder, "tests.tsv")
    env = dict(os.environ, SUITE_PROFILE_LOG=log, SUITE_PROFILE_TESTS=tests,
               PYTEST_ADDOPTS=f"--junitxml={junit}")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(HERE, "suite_profile"), env.get("PYTHONPATH")) if p)
    before = calibrate()
    sampler = Sampler(os.path.join(folder, "cpu.tsv"))
    sampler.start()
    started = time.time()
    done = subprocess.run(["make", "test"], cwd=args.clone, env=env, capture_output=True, text=True)
    wall = time.time() - started
    sampler.stop.set()
    sampler.join()
    after = calibrate()
    print(f"# The suite's time: `make test` in {args.clone}, exit status {done.returncode}\n")
    print(f"Command: `python bench/suite_profile.py --clone={args.clone}`; log in {log}.\n")
    print("```\n" + "\n".join(done.stdout.strip().splitlines()[-2:]) + "\n```\n")
    print(f"The machine: {processor()}, {os.cpu_count()} CPUs; its speed (`python -c "
          f"\"{CALIBRATION}\"`, median CPU of 3): {before:.2f} s before the suite, {after:.2f} s after.\n")
    rows = read_log(log)
    report(rows, junit, wall)
    tests_report(tests)
    machine_report(os.path.join(folder, "cpu.tsv"))
    sampled_report(sampler.processes, {r["pid"] for r in rows})
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
