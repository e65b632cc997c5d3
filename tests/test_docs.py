"""The pages stay true to the code: the flag reference is generated from the flag
definitions and must be current; every relative link points at a file that exists;
the README stays a front door (at most 15 KB)."""

import importlib.util
import json
import math
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_flag_reference_is_generated_from_the_current_flags():
    done = subprocess.run([sys.executable, "docs/make_flags.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_flag_reference_names_every_flag_once():
    # train.py's flags are read in a process of their own: absl's registry is global,
    # and probe.py (imported by another test) defines flags of the same names.
    listed = subprocess.run(
        [sys.executable, "-c", "import train\n"
         "print(' '.join(f.name for f in train.FLAGS.get_flags_for_module(train)))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    ours = set(listed.stdout.split())
    page = (ROOT / "docs" / "FLAGS.md").read_text()
    named = re.findall(r"^\| `--(\w+)` \|", page, flags=re.M)
    assert sorted(named) == sorted(set(named))
    assert set(named) == ours and len(ours) > 20


def test_every_relative_link_points_at_a_file_and_heading_that_exist():
    missing = []
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)]*))?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = page.parent / target if target else page
            if not path.exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
            elif anchor and path.suffix == ".md" and f'<a id="{anchor}">' not in path.read_text():
                try:
                    section(path.read_text(), anchor)
                except AssertionError:
                    missing.append(f"{page.relative_to(ROOT)} -> {target}#{anchor}")
    assert not missing


def test_the_readme_is_read_in_five_minutes():
    assert len((ROOT / "README.md").read_bytes()) <= 15 * 1024


def slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def section(page, anchor):
    """The part of `page` under the heading whose anchor is `anchor` (all of it if none)."""
    if not anchor:
        return page
    lines = page.splitlines()
    for i, line in enumerate(lines):
        level = len(line) - len(line.lstrip("#"))
        if level and slug(line[level:]) == anchor:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("#")
                        and len(lines[j]) - len(lines[j].lstrip("#")) <= level), len(lines))
            return "\n".join(lines[i:end])
    raise AssertionError(f"no heading with the anchor #{anchor}")


def _claims():
    """bench/claims.py: the README results rows' claims and their records."""
    spec = importlib.util.spec_from_file_location("bench_claims", ROOT / "bench" / "claims.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up.
    spec.loader.exec_module(module)
    return module


claims = _claims()


def record(claim):
    return json.loads(claims.record_path(claim).read_text())


def test_every_readme_results_row_names_its_one_run_and_links_its_record():
    """Each row of the README's results table has one claim in bench/claims.py and links
    that claim's record; the row says the record's date and commit (or that the commit was
    not recorded, which the record must say too)."""
    rows = claims.readme_rows()
    assert len(rows) >= 10
    named = []
    for first, (_, _, source) in rows.items():
        [claim] = [c for c in claims.CLAIMS if first.startswith(c.row)]
        named.append(claim.name)
        link = re.findall(r"\]\((bench/results/claims/[^)]+)\)", source)
        assert link == [f"bench/results/claims/{claim.name}.json"], first
        data = record(claim)
        assert (data["name"], data["row"]) == (claim.name, claim.row)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", data["date"]) and data["date"] in source, first
        assert data["command"].startswith("python ") and data["results"], first
        assert all((ROOT / name).exists() for name in data["results"]), first
        if data["commit"] is None:
            assert "commit not recorded" in source, first
            assert data["commit_note"].startswith("commit not recorded"), first
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", data["commit"]), first
            short = re.findall(r"`([0-9a-f]{7,40})`", source)
            assert len(short) == 1 and data["commit"].startswith(short[0]), first
    assert sorted(named) == sorted(c.name for c in claims.CLAIMS)


def test_every_number_a_readme_results_row_quotes_is_its_record_s():
    """The numbers a row quotes are its record's, in order, at the digits quoted (a bound,
    `p < 1e-7`, holds for the record's value); a number in the result cell that the claim's
    pattern does not read fails too, so none is quoted unchecked."""
    for claim in claims.CLAIMS:
        result, quoted = claims.quoted_numbers(claim)
        numbers = record(claim)["numbers"]
        assert len(quoted) == len(numbers), claim.name
        for (text, _), number in zip(quoted, numbers):
            assert claims.agrees(text, number["value"], number.get("bound")), (
                f"{claim.name}: the README quotes {text}, the record has {number}")
        spans = [span for _, span in quoted]
        for found in re.finditer(claims.NUMBER, result):
            assert any(a <= found.start() and found.end() <= b for a, b in spans), (
                f"{claim.name}: {found.group()} is quoted but not read by the claim's pattern")


def test_every_record_is_what_its_results_files_give():
    """Each record's numbers, recomputed from its results files (read, not rerun). A record
    without a commit (written by hand, saying so) has no files of its run to read."""
    for claim in claims.CLAIMS:
        data = record(claim)
        if data["commit"] is None:
            continue
        assert data["results"] == claim.results, claim.name
        got = claims.numbers_of(claim)
        assert [n["what"] for n in got] == [n["what"] for n in data["numbers"]], claim.name
        for new, old in zip(got, data["numbers"]):
            assert new.get("bound") == old.get("bound"), claim.name
            assert math.isclose(new["value"], old["value"], rel_tol=1e-9, abs_tol=1e-15), (
                f"{claim.name}: {old['what']}: the record has {old['value']}, its files give {new['value']}")


def test_a_quoted_number_agrees_with_a_value_at_its_own_digits():
    assert claims.agrees("0.810", 0.81) and claims.agrees("94.37", 94.3693)
    assert not claims.agrees("0.38", 0.38567) and claims.agrees("0.39", 0.38567)
    assert claims.agrees("10,000", 10000) and claims.agrees("10 min 18 s", 617.9)
    assert claims.agrees("8.3e-10", 8.32e-10) and not claims.agrees("8.3e-10", 8.36e-10)
    assert claims.agrees("1e-7", 1.53e-8, "<") and not claims.agrees("1e-8", 1.53e-8, "<")
    assert claims.agrees("8.3e-10", 8.32e-10, "≤") and not claims.agrees("8.3e-10", 8.4e-10, "≤")
    assert [m.group() for m in re.finditer(claims.NUMBER, "at 100, 300 and 1,000 (p ≤ 1.4e-07)")] == [
        "100", "300", "1,000", "1.4e-07"]


# A measured number as the pages write one, in the forms that two measurements rarely
# share by chance: a value with its ± spread, a time in minutes and seconds, a ratio
# (208x), a percentage with a decimal; not inside code (commands, flag values). A bare
# accuracy or rate to three places is left out: among a few hundred of them in [0, 1],
# two unrelated ones are often equal (a tau of 0.001 and a p-value of 0.001).
_MEASURED = re.compile(
    r"(?<![\w.=/-])(?:\d+\.\d+ ± \d+\.\d+|\d+ min \d+ s|\d+(?:\.\d+)?x(?!\w)|\d+\.\d+%)"
)
# The same figure, not a copy: papers' figures quoted beside ours where a page compares
# with them, and two measurements that came out equal.
_NOT_COPIES = {
    "93.84 ± 0.23",  # NAS-Bench-201's published best of 100 random cells (Dong & Yang 2020).
}


def measured_numbers(text):
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return set(_MEASURED.findall(re.sub(r"`[^`]*`", "", text))) - _NOT_COPIES


def test_every_measured_number_lives_in_one_page():
    """BENCHMARKS.md and the guides: a measurement is written in the page that owns it,
    and the others link to it (the README's result table is tied to its runs' records by
    the tests above instead). A number in two pages is a copy that would drift."""
    pages = [ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
    seen, copies = {}, []
    for page in pages:
        # Defaults; the papers' own figures; the log of earlier runs, which repeats old values.
        if page.name in ("FLAGS.md", "REFERENCES.md", "LOG.md"):
            continue
        text = page.read_text()
        for number in sorted(measured_numbers(text)):
            if number in seen:
                copies.append(f"{number}: {seen[number]} and {page.name}")
            else:
                seen[number] = page.name
    assert not copies


def test_the_measured_number_pattern_finds_what_it_is_for():
    text = ("0.641 ± 0.004 in 11 min 05 s, 208x, +24.6%, 94.37 ± 0.01; `--lr=0.001`, 0.05, "
            "2026-12-03, 94.37, 0.737, 93.84 ± 0.23")  # The last: a published figure.
    assert measured_numbers(text) == {"0.641 ± 0.004", "11 min 05 s", "208x", "24.6%", "94.37 ± 0.01"}


# What a reader of the repository cannot open: the team's own reference notes and issue
# tracker. Papers, repositories and data are cited by name (docs/REFERENCES.md).
_UNREACHABLE = re.compile(r"REFERENCES(?:\.md)? §|references, §|\.\./shared/|\b[Ii]ssues? #?\d+\b")


def test_no_reference_points_at_something_a_reader_cannot_open():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    suffixes = {".py", ".md", ".flags", ".sh", ".txt", ".toml", ".cfg"}
    found = []
    for name in listed:
        path = ROOT / name
        if path.suffix not in suffixes and path.name != "Makefile":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _UNREACHABLE.search(line) and "_UNREACHABLE" not in line:
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_every_reference_in_the_references_page_is_cited_somewhere():
    page = (ROOT / "docs" / "REFERENCES.md").read_text()
    anchors = re.findall(r'<a id="([\w-]+)"></a>\*\*([^*]+)\*\*', page)
    assert len(anchors) >= 20
    elsewhere = "\n".join(
        p.read_text() for p in [*ROOT.glob("*.py"), *ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"),
                                *(ROOT / "bench").glob("*.py"), *(ROOT / "configs").glob("*")]
        if p.name != "REFERENCES.md"
    )
    # A work is cited by its name as the page bolds it, up to the first comma or period
    # ("ENAS", "Zoph & Le 2016", "Keras Tuner"), or by its anchor.
    uncited = []
    for anchor, title in anchors:
        name = re.split(r"[,.](?:\s|$)", title)[0]
        if name not in elsewhere and f"REFERENCES.md#{anchor}" not in elsewhere:
            uncited.append(f"{anchor}: {name}")
    assert not uncited
