"""`qoracle zoo`: the conformance suite against real, reported defects of shipped kernels.

Self-made mutants prove the suite can fail; the zoo measures whether it finds what went wrong in
the wild. For each registry entry (reports/zoo_entries.py) it installs the affected release and the
fixed one, each in its own virtual environment under a cache folder (one per package and version,
reused between runs), runs the entry's conformance selection there with `--results`, and reads
what the suite recorded:

- affected release: DETECTED (a test failed), MISSED (everything passed), KNOWN DEFECT (the suite
  reported it as a registered or modelled by-design behaviour);
- fixed release: PASSED, or FALSE ALARM (the suite fails a release that upstream fixed);
- either: NOT INSTALLABLE (pip's own reason), NOT JUDGED (every case skipped: the suite cannot
  drive this release, with the reason it gave), NOT RUN (a stated policy reason), ERROR.

An entry counts as detected only where the affected release fails and the fixed one does not.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reports.zoo_entries import TEST_REQUIREMENTS, TORCH_FIRST, ZOO, Entry

__all__ = ["VersionOutcome", "classify", "entry_verdict", "summary", "markdown", "select", "run_zoo", "main"]

DEFAULT_CACHE = os.path.join("~", ".cache", "qoracle-zoo")
SKIPPED = ("UNAVAILABLE", "UNSUPPORTED")
DETECTED_VERDICTS = ("DETECTED", "DETECTED (fixed not checked)")
JUDGED_VERDICTS = (*DETECTED_VERDICTS, "MISSED", "INCONCLUSIVE")


@dataclass
class VersionOutcome:
    """What one release gave: its status, the suite's first failure line, and the cost."""

    role: str  # "affected" | "fixed" | "by design"
    version: str
    status: str
    printed: str = ""  # the suite's first failure line (or pip's / the skip reason)
    detail: str = ""  # the line after it, where there is one
    counts: dict = field(default_factory=dict)  # test outcomes
    install_s: float = 0.0
    run_s: float = 0.0
    env: str = ""  # the environment's folder name under the cache
    env_mb: float = 0.0


# ------------------------------------------------------------------------------ classification

def _first_lines(message: str) -> tuple[str, str]:
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("Failed: "):  # pytest.fail's prefix, not the suite's words
        lines[0] = lines[0][len("Failed: "):]
    return (lines[0] if lines else "", lines[1] if len(lines) > 1 else "")


def classify(role: str, results: dict | None, rc: int, tail: str = "", known_pattern: str = "") -> tuple[str, str, str]:
    """(status, printed, detail) of one release from the suite's results file and pytest's exit code.

    A failed test is the suite's alarm; a strict xfail that held (a registered known defect) or a
    recorded case matching `known_pattern` (a modelled by-design behaviour) is a known defect; a
    run that judged no case at all (every one UNAVAILABLE/UNSUPPORTED) says nothing either way."""
    if results is None:
        return "ERROR", f"pytest exit {rc}, no results file", _first_lines(tail)[0] if tail else ""
    tests: dict = results.get("tests", {})
    cases: list = results.get("cases", [])
    failures: list = results.get("failures", [])
    failed = [n for n, o in tests.items() if o.startswith("failed") or o == "xpassed"]
    judged = [c for c in cases if c.get("status") not in SKIPPED]
    known = any(o == "xfailed" for o in tests.values()) or any(c.get("known_defect") for c in cases) or (
        bool(known_pattern) and any(re.search(known_pattern, json.dumps(c)) for c in judged))
    if failed:
        msg = next((f["message"] for f in failures if f.get("message")), f"{failed[0]} {tests[failed[0]]}")
        printed, detail = _first_lines(msg)
        return ("FALSE ALARM" if role == "fixed" else "DETECTED"), printed, detail
    if not judged:
        reason = next((c.get("detail", "") for c in cases if c.get("detail")), "")
        if not cases:
            reason = f"no case recorded (pytest exit {rc})"
        return "NOT JUDGED", reason, ""
    if role == "fixed":
        return "PASSED", "", ""
    return ("KNOWN DEFECT" if known else "MISSED"), "", ""


def entry_verdict(entry: Entry, outcomes: list[VersionOutcome]) -> str:
    """The entry's line in the score: Defects4J's rule for fixed defects, 'reported as known' for by-design ones."""
    by_role = {o.role: o for o in outcomes}
    first = outcomes[0].status if outcomes else "NOT RUN"
    if first in ("NOT INSTALLABLE", "NOT RUN", "ERROR"):
        return first
    if first == "NOT JUDGED":
        return "NOT JUDGED"
    if entry.expected == "known":
        return {"KNOWN DEFECT": "KNOWN (by design)", "DETECTED": "SURPRISE", "MISSED": "MISSED"}.get(first, first)
    if first == "MISSED":
        return "MISSED"
    fixed = by_role.get("fixed")
    if fixed is None or fixed.status in ("NOT INSTALLABLE", "NOT RUN", "NOT JUDGED", "ERROR"):
        return "DETECTED (fixed not checked)"
    return "DETECTED" if fixed.status == "PASSED" else "INCONCLUSIVE"


def summary(rows: list[dict]) -> dict:
    """Detection rate over fixed defects whose affected release the suite could judge; by-design apart."""
    fixed_kind = [r for r in rows if r["expected"] == "detected"]
    judged = [r for r in fixed_kind if r["verdict"] in JUDGED_VERDICTS]
    detected = [r for r in judged if r["verdict"] in DETECTED_VERDICTS]
    confirmed = [r for r in judged if r["verdict"] == "DETECTED"]
    known = [r for r in rows if r["expected"] == "known"]
    return {"entries": len(rows), "fixed_defects": len(fixed_kind), "judged": len(judged),
            "detected": len(detected), "detected_with_fixed_passing": len(confirmed),
            "detection_rate": round(len(detected) / len(judged), 3) if judged else None,
            "by_design": len(known), "by_design_reported_known": sum(r["verdict"] == "KNOWN (by design)" for r in known),
            "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in sorted({r["verdict"] for r in rows})}}


# ------------------------------------------------------------------------------------ rendering

def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _version_cell(o: dict | None) -> str:
    return "—" if o is None else f"{o['version']}: **{o['status']}**"


def markdown(report: dict) -> str:
    """docs/zoo.md: the table, the score, and what each miss would need."""
    rows = report["rows"]
    s = report["summary"]
    rate = "n/a" if s["detection_rate"] is None else f"{s['detection_rate']:.0%}"
    out = ["# The defect zoo", "",
           "Real defects reported against shipped low-precision kernels, each run through the conformance",
           "suite in a fresh environment with the affected release and with the release that fixed it",
           "(`qoracle zoo`; registry in `reports/zoo_entries.py`). A defect counts as detected only where the",
           "affected release fails and the fixed one passes. Behaviour upstream keeps by design must come out",
           "as a registered or modelled known defect, not as a surprise.", "",
           f"Host: {report.get('host', 'this host')}. Run took {report.get('wall_s', 0) / 60:.1f} min, "
           f"environments {report.get('disk_mb', 0):.0f} MB.", "",
           f"**Score**: {s['detected']} of {s['judged']} fixed defects the suite could judge were detected "
           f"({rate}; {s['detected_with_fixed_passing']} of them with the fixed release passing); "
           f"{s['by_design_reported_known']} of {s['by_design']} by-design behaviours reported as known. "
           f"{s['fixed_defects'] - s['judged']} fixed defects could not be judged here (see below).", "",
           "| entry | kind | trigger | affected | fixed | verdict | what the suite printed |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = {o["role"]: o for o in r["outcomes"]}
        first = r["outcomes"][0] if r["outcomes"] else None
        aff = vs.get("affected") or vs.get("by design")
        fixed = vs.get("fixed")
        fixed_cell = _version_cell(fixed) if fixed else ("by design" if r["expected"] == "known" else
                                                         f"{r['fixed']}: **NOT RUN**")
        printed = " ".join(p for p in ((first or {}).get("printed", ""), (first or {}).get("detail", "")) if p)
        if fixed and fixed["status"] == "FALSE ALARM":
            printed = f"{printed} / fixed: {fixed['printed']}"
        out.append(f"| [{r['id']}]({r['link']}) | {r['kind']} | {_cell(r['trigger'], 200)} | {_version_cell(aff)} | "
                   f"{fixed_cell} | {r['verdict']} | {_cell(printed, 400)} |")
    gaps = [r for r in rows if r["verdict"] not in (*DETECTED_VERDICTS, "KNOWN (by design)")]
    if gaps:
        out += ["", "## Gaps", "",
                "Each entry the suite did not detect, and what would close it.", ""]
        for r in gaps:
            why = {o["role"]: o for o in r["outcomes"]}
            reasons = "; ".join(f"{o['role']} {o['version']}: {o['status']}" + (f" ({_cell(o['printed'], 300)})"
                                if o["printed"] and o["status"] != "FALSE ALARM" else "")
                                for o in why.values())
            out.append(f"- **{r['id']}** ({r['verdict']}): {reasons}.")
            if r.get("gap"):
                out.append(f"  Closing it: {r['gap']}.")
            if r.get("fixed_not_run"):
                out.append(f"  Fixed release not run: {r['fixed_not_run']}.")
            if r.get("notes"):
                out.append(f"  Note: {r['notes']}.")
    notes = [r for r in rows if r.get("notes") and r not in gaps]
    if notes:
        out += ["", "## Notes", ""] + [f"- **{r['id']}**: {r['notes']}." for r in notes]
    out += ["", "Reproduce: `qoracle zoo` (all entries) or `qoracle zoo --entry 'ort-*'`; `qoracle zoo --list` "
            "shows the registry.", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------- environments

def _scrub(text: str, cache: Path) -> str:
    """No machine paths in what the zoo prints or writes."""
    text = text.replace(str(cache), "<cache>").replace(os.path.expanduser("~"), "~")
    return re.sub(r"/tmp/[\w./-]+", "<tmp>", text)


def _pip_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    cause = [ln for ln in lines if "requested" in ln or "No matching distribution" in ln]  # the resolver's why
    return " ".join(dict.fromkeys([*errors[:1], *cause, *errors[1:]] or lines[-3:]))[:600]


def env_name(package: str, version: str, pins: tuple[str, ...]) -> str:
    """One environment per (package, version); other pins only add a short digest."""
    base = f"{package}-{version}".replace("+", "_")
    extra = tuple(p for p in pins if not p.startswith(f"{package}=="))
    return base if not extra else f"{base}-{hashlib.sha1(' '.join(extra).encode()).hexdigest()[:6]}"


def _dir_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / 2 ** 20


def _pip(env: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-input", "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_clean_env())


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_NO_INPUT"] = "1"
    return env


def install(entry: Entry, version: str, cache: Path, checkout: Path, timeout: float = 1800) -> tuple[Path | None, str, float]:
    """(environment, '' or pip's reason it cannot be installed, seconds); an environment that
    installed before is reused as it is."""
    pins = entry.pins(version)
    env = cache / env_name(entry.package, version, pins)
    marker = env / "qoracle-zoo.json"
    want = {"pins": list(pins), "torch_first": entry.needs_torch or entry.package == "torch"}
    if marker.exists() and json.loads(marker.read_text()) == want:
        return env, "", 0.0
    t0 = time.monotonic()
    shutil.rmtree(env, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(env)], capture_output=True, text=True, env=_clean_env())
    if made.returncode:
        return None, _scrub(f"venv: {made.stderr.strip()[:400]}", cache), time.monotonic() - t0
    steps: list[list[str]] = []
    if entry.package == "torch":
        steps.append([pins[0]])  # the pinned torch alone first: a missing CPU build fails here, before anything pulls torch
    elif entry.needs_torch:
        steps.append([TORCH_FIRST])
    steps += [["-e", str(checkout)], [*pins, *TEST_REQUIREMENTS]]
    for args in steps:
        try:
            done = _pip(env, args, timeout)
        except subprocess.TimeoutExpired:
            shutil.rmtree(env, ignore_errors=True)
            return None, f"pip install {' '.join(args)} ran past {timeout:.0f} s", time.monotonic() - t0
        if done.returncode:
            shutil.rmtree(env, ignore_errors=True)
            what = "the project" if args[0] == "-e" else " ".join(args)
            return None, _scrub(f"pip install {what}: {_pip_reason(done.stderr)}", cache), time.monotonic() - t0
    marker.write_text(json.dumps(want))
    return env, "", time.monotonic() - t0


def run_selection(entry: Entry, env: Path, checkout: Path, results: Path, timeout: float) -> tuple[dict | None, int, str]:
    """The entry's conformance selection in `env`: (results file contents, pytest exit code, output tail)."""
    cmd = [str(env / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *entry.selection,
           "--isa", entry.isa, "--results", str(results)]
    for k in entry.kernels:
        cmd += ["--kernel", k]
    results.unlink(missing_ok=True)
    try:
        done = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, timeout=timeout, env=_clean_env())
        rc, tail = done.returncode, (done.stdout + done.stderr)[-3000:]
    except subprocess.TimeoutExpired as e:
        rc, tail = 124, f"pytest ran past {timeout:.0f} s: {str(e.stdout or '')[-1000:]}"
    data = json.loads(results.read_text()) if results.exists() else None
    return data, rc, tail


# -------------------------------------------------------------------------------------- the run

def select(patterns: list[str]) -> list[Entry]:
    """Registry entries whose id matches any glob (all without patterns); a glob that matches none is an error."""
    if not patterns:
        return list(ZOO)
    for p in patterns:
        if not any(fnmatch.fnmatchcase(e.id, p) for e in ZOO):
            raise ValueError(f"--entry {p!r} matches no zoo entry; known: {', '.join(e.id for e in ZOO)}")
    return [e for e in ZOO if any(fnmatch.fnmatchcase(e.id, p) for p in patterns)]


def _run_version(entry: Entry, role: str, version: str, cache: Path, checkout: Path, timeout: float) -> VersionOutcome:
    env, why, t_inst = install(entry, version, cache, checkout)
    if env is None:
        return VersionOutcome(role, version, "NOT INSTALLABLE", printed=why, install_s=round(t_inst, 1))
    results = cache / "results" / f"{entry.id}-{env.name}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    data, rc, tail = run_selection(entry, env, checkout, results, timeout)
    status, printed, detail = classify(role, data, rc, tail, entry.known_pattern)
    counts = {} if data is None else data.get("outcomes", {})
    return VersionOutcome(role, version, status, _scrub(printed, cache)[:600], _scrub(detail, cache)[:600], counts,
                          round(t_inst, 1), round(time.monotonic() - t0, 1), env.name, round(_dir_mb(env), 1))


def run_zoo(entries: list[Entry], cache: Path, checkout: Path, timeout: float = 1200,
            log=print) -> dict:
    """Install and run every entry's releases; the report (rows, summary, time, disk)."""
    t0 = time.monotonic()
    rows = []
    for entry in entries:
        outcomes = []
        for role, version in entry.versions():
            if role == "fixed" and entry.fixed_not_run:
                outcomes.append(VersionOutcome(role, version, "NOT RUN", printed=entry.fixed_not_run))
                continue
            log(f"== {entry.id}: {entry.package} {version} ({role}) ...")
            o = _run_version(entry, role, version, cache, checkout, timeout)
            log(f"   {o.status}  {o.printed[:200]}  [install {o.install_s:.0f} s, run {o.run_s:.0f} s]")
            outcomes.append(o)
        row = {k: v for k, v in asdict(entry).items() if k != "selection"}
        row["selection"] = " ".join(entry.selection)
        row["outcomes"] = [asdict(o) for o in outcomes]
        row["verdict"] = entry_verdict(entry, outcomes)
        rows.append(row)
    envs = {o["env"] for r in rows for o in r["outcomes"] if o["env"]}
    disk = sum(_dir_mb(cache / e) for e in envs if (cache / e).exists())
    from reports.certificate import host

    h = host()
    return {"host": f"{h['cpu']} ({h['machine']})", "wall_s": round(time.monotonic() - t0, 1),
            "disk_mb": round(disk, 1), "rows": rows, "summary": summary(rows)}


def _print_list(entries: list[Entry]) -> None:
    for e in entries:
        fixed = e.fixed or "by design"
        print(f"{e.id:42s} {e.kind:15s} {e.package} {e.affected} -> {fixed}  [{e.expected}]")
        print(f"{'':42s} {e.link}")
        print(f"{'':42s} pytest {' '.join(e.selection)}" + "".join(f" --kernel {k}" for k in e.kernels))


def main(patterns: list[str], list_only: bool, cache: str, json_path: str | None, md_path: str | None,
         timeout: float) -> int:
    """Exit 0 once every entry was measured (whatever its verdict), 1 where one ended in ERROR."""
    entries = select(patterns)
    if list_only:
        _print_list(entries)
        return 0
    checkout = Path(__file__).resolve().parent.parent
    cache_dir = Path(os.path.expanduser(cache)).resolve()
    report = run_zoo(entries, cache_dir, checkout, timeout)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=1))
    text = markdown(report)
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(text)
    print(text)
    return 1 if any(r["verdict"] == "ERROR" for r in report["rows"]) else 0
