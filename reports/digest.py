"""What a maintainer reads first in a certificate: why the verdict, counts per kernel and level,
failures grouped once across levels, and cases aligned across levels for the matrix.

The HTML page and summary.md render the same digest, so the two never disagree. Pure functions
of the certificate dict; oracle/status.py decides which statuses fail.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from oracle.status import FAILING, NOT_JUDGED, Status

__all__ = ["CATEGORIES", "Group", "Row", "aligned", "category", "category_counts", "diagnostics", "failure_groups", "ran",
           "failing_tests_without_case", "first_line", "is_new", "levels", "ratio", "ratio_stats", "RatioStats", "why"]

_BAD = frozenset(s.value for s in FAILING)
_NOT_JUDGED = frozenset(s.value for s in NOT_JUDGED)
# the columns of the kernel x level table, each case in exactly one
CATEGORIES = ("pass", "known defect", "new failure", "suspect", "load failed", "unsupported", "unavailable")
_BY_STATUS = {Status.BIT_EXACT: "pass", Status.BOUNDED: "pass", Status.FAIL: "new failure",
              Status.CRASHED: "new failure", Status.SUSPECT: "suspect", Status.LOAD_FAILED: "load failed",
              Status.UNSUPPORTED: "unsupported", Status.UNAVAILABLE: "unavailable"}
# order of new failures inside their section: what needs a look first
_SEVERITY = {"CRASHED": 0, "FAIL": 1, "LOAD_FAILED": 2, "SUSPECT": 3}


def category(c: dict) -> str:
    """The table column of a case: a failing status with a registered defect is a known defect."""
    if c["status"] in _BAD and c.get("known_defect"):
        return "known defect"
    return _BY_STATUS[Status(c["status"])]


def is_new(c: dict) -> bool:
    return c["status"] in _BAD and not c.get("known_defect")


def levels(cert: dict) -> list[str]:
    return [r["isa_requested"] for r in cert["runs"]]


def category_counts(cert: dict) -> dict[str, dict[str, Counter[str]]]:
    """{kernel: {level: Counter(category)}}, levels in run order; every case counted once."""
    out: dict[str, dict[str, Counter[str]]] = defaultdict(dict)
    for run in cert["runs"]:
        for c in run.get("cases", []):
            out[c["kernel"]].setdefault(run["isa_requested"], Counter())[category(c)] += 1
    return dict(sorted(out.items()))


def ran(cert: dict, kernel: str, level: str) -> str:
    """How a kernel ran at a level (native / capped / emulated / unavailable), '-' where not recorded."""
    return cert.get("modes", {}).get(kernel, {}).get(level, {}).get("how", "-")


def first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


@dataclass
class Group:
    """One failure as a maintainer sees it: the same test, status and first detail line at one or more levels."""

    nodeid: str
    kernel: str
    status: str
    headline: str
    known_defect: str | None
    cases: list[dict] = field(default_factory=list)

    @property
    def levels(self) -> list[str]:
        return list(dict.fromkeys(c["isa_requested"] for c in self.cases))

    @property
    def first(self) -> dict:
        return self.cases[0]

    @property
    def shapes(self) -> list[str]:
        return list(dict.fromkeys("x".join(map(str, c.get("shape") or [])) or "-" for c in self.cases))

    @property
    def reproduce(self) -> list[str]:
        return list(dict.fromkeys(c["reproduce"] for c in self.cases if c.get("reproduce")))


def failure_groups(cert: dict) -> list[Group]:
    """Every failing case once, grouped; new failures first (worst status first), then known defects; groups
    of the same test keep the order they were first met in."""
    groups: dict[tuple, Group] = {}
    for run in cert["runs"]:
        for c in run.get("cases", []):
            if c["status"] not in _BAD:
                continue
            key = (c.get("nodeid", ""), c["kernel"], c["status"], first_line(c.get("detail")), c.get("known_defect"))
            g = groups.get(key) or groups.setdefault(key, Group(key[0], key[1], key[2], key[3], key[4]))
            g.cases.append(c)
    return sorted(groups.values(), key=lambda g: (g.known_defect is not None, _SEVERITY[g.status], g.kernel, g.nodeid))


def failing_tests_without_case(cert: dict) -> list[tuple[str, dict]]:
    """(level, failure) for each failed test of a run that recorded no failing case: a fixture error, a
    broken test, a strict xfail that passed; these fail the run and nothing else shows them."""
    out = []
    for run in cert["runs"]:
        judged = {c.get("nodeid") for c in run.get("cases", []) if is_new(c)}
        out += [(run["isa_requested"], f) for f in run.get("failures", []) if f.get("nodeid") not in judged]
    return out


def ratio(v: object) -> str:
    return f"{v:.3g}" if isinstance(v, (int, float)) else "-"


def diagnostics(c: dict, max_lines: int = 12) -> list[str]:
    """What a failing case says about itself: its detail, the first bad element, worst ratios to both bounds."""
    lines = (c.get("detail") or "").strip().splitlines()
    out = lines[:max_lines] + ([f"... ({len(lines) - max_lines} more lines)"] if len(lines) > max_lines else [])
    m = c.get("mismatch") or {}
    if m:
        where = m.get("index")
        err = "".join(f", {k} {ratio(m[k])}" for k in ("error", "bound") if m.get(k) is not None)
        out.append(f"first bad element {where}: expected {m.get('expected')!r} ({m.get('expected_hex')}), "
                   f"actual {m.get('actual')!r} ({m.get('actual_hex')}){err}; {m.get('count', 1)} bad in all")
    if c.get("worst_ratio") is not None or c.get("worst_ratio_probable") is not None:
        out.append(f"worst error/bound {ratio(c.get('worst_ratio'))} (rigorous), "
                   f"{ratio(c.get('worst_ratio_probable'))} (probable tier)")
    return out


@dataclass
class RatioStats:
    """The error-to-bound picture of one kernel at one level: judged = with a ratio + without one."""

    judged: int
    rigorous: list[float]
    probable: list[float]
    not_judged: int

    @property
    def without(self) -> int:
        return self.judged - len(self.rigorous)

    @property
    def caption(self) -> str:
        zero, over = sum(v == 0 for v in self.rigorous), sum(v > 1 for v in self.rigorous)
        return (f"{self.judged} judged = {len(self.rigorous)} with a ratio ({zero} at 0, {over} over 1) "
                f"+ {self.without} without; {len(self.probable)} probable")


def ratio_stats(cases: list[dict]) -> RatioStats:
    """Worst ratios of the judged cases; unsupported, unavailable and load failures were never judged."""
    judged = [c for c in cases if c["status"] not in _NOT_JUDGED and c["status"] != "LOAD_FAILED"]

    def values(key: str) -> list[float]:
        return [float(c[key]) for c in judged if isinstance(c.get(key), (int, float))]
    return RatioStats(len(judged), values("worst_ratio"), values("worst_ratio_probable"), len(cases) - len(judged))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def why(cert_runs: list[dict], verdict: str) -> str:
    """One sentence after the verdict, e.g. 'FAILED: 3 new failures in 2 kernels (2 FAIL, 1 SUSPECT); 12 known defects'."""
    cases = [c for r in cert_runs for c in r.get("cases", [])]
    new = [c for c in cases if is_new(c)]
    known = [c for c in cases if c["status"] in _BAD and c.get("known_defect")]
    judged = [c for c in cases if c["status"] not in _NOT_JUDGED]
    parts = []
    if new:
        by = Counter(c["status"] for c in new)
        detail = ", ".join(f"{n} {s}" for s, n in sorted(by.items(), key=lambda x: _SEVERITY[x[0]]))
        parts.append(f"{_plural(len(new), 'new failure')} in {_plural(len({c['kernel'] for c in new}), 'kernel')}"
                     f" ({detail})")
    explained = {r["isa_requested"] for r in cert_runs if any(is_new(c) for c in r.get("cases", []))}
    for r in cert_runs:
        rc = r.get("pytest_exit_code")
        if rc not in (0, 5, None) and not (rc == 1 and r["isa_requested"] in explained):
            parts.append(f"pytest exited with status {rc} at --isa {r['isa_requested']} outside any failing case")
    if known:
        parts.append(f"{_plural(len(known), 'known defect')} in "
                     f"{_plural(len({c['kernel'] for c in known}), 'kernel')}")
    suspect = [c for c in cases if c["status"] == Status.SUSPECT.value]
    if suspect:
        parts.append(f"{_plural(len(suspect), 'suspect case')} (outside the probable error tier, inside the "
                     "rigorous bound: a warning)")
    if verdict == "PASSED":
        parts.insert(0, f"{_plural(len(judged), 'case')} judged in {_plural(len({c['kernel'] for c in judged}), 'kernel')},"
                        " every one bit-exact or within its bound")
    elif verdict == "KNOWN_DEFECTS":
        parts.insert(0, "no new failures")
    elif verdict == "EMPTY":
        parts.append(f"nothing was judged ({_plural(len(cases), 'case')}, all unsupported or unavailable)"
                     if cases else "nothing was judged (no cases)")
    return f"{verdict}: {'; '.join(parts)}"


@dataclass
class Row:
    """One case across levels: the test and its ordinal among that test's cases at each level."""

    nodeid: str
    ordinal: int
    cells: dict[str, dict] = field(default_factory=dict)

    @property
    def any_case(self) -> dict:
        return next(iter(self.cells.values()))


def aligned(cert: dict) -> dict[str, list[Row]]:
    """{kernel: rows}; the derandomized profile draws the same cases at every level, so the n-th case
    of a test at one level is the n-th at another."""
    rows: dict[tuple[str, int], Row] = {}
    for run in cert["runs"]:
        seen: Counter[str] = Counter()
        for c in run.get("cases", []):
            nodeid = c.get("nodeid", "")
            key = (nodeid, seen[nodeid])
            seen[nodeid] += 1
            rows.setdefault(key, Row(*key)).cells[run["isa_requested"]] = c
    out: dict[str, list[Row]] = defaultdict(list)
    for row in rows.values():
        out[row.any_case["kernel"]].append(row)
    return dict(sorted(out.items()))
