"""The certificate: every judged case of a run, with the kernel, host and package identity, as JSON.

Schema `qoracle-certificate/2`, documented field by field in docs/certificate.md:
  schema, oracle_version, created (UTC ISO time), selection {kernels, profile}, host {cpu, machine,
  isa_levels, flags, known_levels, gpus}, packages {name: version or null}, kernels {name: identity},
  isa [{requested, observed, skipped, pytest_exit_code}], runs [{isa_requested, skipped?,
  pytest_exit_code, cases [...], vectors?}], vectors [offline golden-vector sets], benchmarks
  (pytest-benchmark rows or null), summary {verdict PASSED|KNOWN_DEFECTS|FAILED|EMPTY, why (one sentence),
  counts {status: n}, kernels {kernel: {isa: {status: n}}}}.
A case is what conformance/conftest.py records (nodeid, kernel, isa_requested, isa_observed,
shape, status (oracle/status.py: BIT_EXACT|BOUNDED|SUSPECT|FAIL|CRASHED|LOAD_FAILED|UNSUPPORTED|UNAVAILABLE), convention, what, detail, mismatch,
metrics, worst_ratio, reproduce) or what `qoracle verify` records for an offline case (the same
keys, isa_requested "offline", plus golden {file, sha256}, model and histogram).
Reports from the same dict: summary.md (markdown), report.html (reports/html.py) and junit.xml
(reports/junit.py); summary.md and report.html share their grouping and counts (reports/digest.py).
"""
from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import platform
import sys
from collections import Counter, defaultdict
from importlib import metadata

from kernels.isa import ORDER, host_flags, levels_on_host
from oracle.status import FAILING, Status
from reports import digest

SCHEMA = "qoracle-certificate/2"
PACKAGES = ("qoracle", "numpy", "ml_dtypes", "torch", "onnxruntime", "llama_cpp_python", "gguf",
            "auto-round-lib", "torchao", "triton")
STATUSES = tuple(s.value for s in Status)
BAD = tuple(s.value for s in Status if s in FAILING)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpus() -> list[dict]:
    """GPUs torch can see (CUDA/ROCm and XPU), or [] where torch is absent or sees none."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return []
    try:
        import torch

        found = []
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                found.append({"backend": "cuda", "index": i, "name": p.name, "memory_bytes": int(p.total_memory),
                              "capability": f"{p.major}.{p.minor}"})
        xpu = getattr(torch, "xpu", None)
        if xpu is not None and xpu.is_available():
            found += [{"backend": "xpu", "index": i, "name": xpu.get_device_name(i)} for i in range(xpu.device_count())]
        return found
    except Exception as e:  # a broken driver is a fact about the host, not a reason to lose the certificate
        return [{"backend": "error", "name": f"{type(e).__name__}: {e}"[:200]}]


def host() -> dict:
    flags = host_flags()
    wanted = {f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sse4"))}
    return {"cpu": _cpu_model(), "machine": platform.machine(), "isa_levels": levels_on_host(flags),
            "flags": sorted(wanted), "known_levels": list(ORDER)}


def kernel_identity(name: str) -> dict:
    """Package, its installed version here, op and declared conventions of a registered kernel."""
    from kernels.registry import get

    try:
        k = get(name)
    except ValueError:
        return {"registered": False}
    return {"registered": True, "package": k.package, "version": _version(k.package), "op": k.op,
            "module": k.module, "conventions": list(k.conventions), "dtypes": list(k.dtypes),
            "isa_knobs": list(k.isa_knobs), "notes": k.notes}


def read_benchmarks(path: str | None) -> list[dict] | None:
    """Rows of a pytest-benchmark JSON file (None when no file is given or it has no benchmarks).

    GB/s and TOPS come from `extra_info` `bytes` / `ops` (per call) where a benchmark records
    them; fraction of peak from `extra_info` `peak_gbps` / `peak_tops` (the host's or GPU's peak
    is not guessed).
    """
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        rows = []
        for b in data.get("benchmarks", []):
            st, ex = b["stats"], b.get("extra_info", {}) or {}
            mean = float(st["mean"])
            row = {"name": b.get("fullname") or b["name"], "mean_s": mean, "stddev_s": float(st.get("stddev", 0)),
                   "rounds": int(st.get("rounds", 0)), "gbps": None, "tops": None, "peak_fraction": None}
            if ex.get("bytes") and mean > 0:
                row["gbps"] = float(ex["bytes"]) / mean / 1e9
                if ex.get("peak_gbps"):
                    row["peak_fraction"] = row["gbps"] / float(ex["peak_gbps"])
            if ex.get("ops") and mean > 0:
                row["tops"] = float(ex["ops"]) / mean / 1e12
                if ex.get("peak_tops"):
                    row["peak_fraction"] = row["tops"] / float(ex["peak_tops"])
            rows.append(row)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a pytest-benchmark JSON file ({type(e).__name__}: {e})") from None
    return rows or None


PASSING = ("PASSED", "KNOWN_DEFECTS")


def modes(per_kernel: dict[str, dict[str, object]]) -> dict[str, dict[str, dict[str, str]]]:
    """How each kernel ran at each level: native, capped by its knob, emulated or unavailable, and why
    (kernels.isa.mode; a level the host lacks is not listed)."""
    from kernels.isa import LEVELS, mode
    from kernels.registry import find

    out: dict[str, dict[str, dict[str, str]]] = {}
    for kernel, levels in per_kernel.items():
        info = find(kernel)
        if info is not None:
            out[kernel] = {lv: {"how": (m := mode(info, lv, probe=False)).how, "why": m.why}
                           for lv in levels if lv in LEVELS}  # offline verification runs at no level
    return out


def build(runs: list[dict], *, kernels: list[str], profile: str, benchmarks: list[dict] | None = None) -> dict:
    counts: Counter[str] = Counter()
    per_kernel: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    failed_run = False
    isa = []
    for run in runs:
        failed_run |= run.get("pytest_exit_code") not in (0, 5, None)
        observed = sorted({c.get("isa_observed") for c in run.get("cases", []) if c.get("isa_observed")})
        isa.append({"requested": run["isa_requested"], "observed": observed, "skipped": run.get("skipped"),
                    "pytest_exit_code": run.get("pytest_exit_code")})
        for c in run.get("cases", []):
            counts[c["status"]] += 1
            per_kernel[c["kernel"]][run["isa_requested"]][c["status"]] += 1
    unknown_bad = sum(1 for r in runs for c in r.get("cases", []) if c["status"] in BAD and not c.get("known_defect"))
    if failed_run or unknown_bad:
        verdict = "FAILED"
    elif any(counts[s] for s in BAD):
        verdict = "KNOWN_DEFECTS"  # every FAIL/CRASHED is a registered upstream defect (strict xfail)
    else:
        judged = counts["BIT_EXACT"] + counts["BOUNDED"]
        verdict = "PASSED" if judged else "EMPTY"  # nothing judged (or only UNAVAILABLE) is not a pass
    from reports.vectors import oracle_version

    return {
        "schema": SCHEMA,
        "oracle_version": oracle_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "selection": {"kernels": kernels, "profile": profile},
        "host": {**host(), "gpus": gpus()},
        "packages": {p: (oracle_version() if p == "qoracle" else _version(p)) for p in PACKAGES},
        "kernels": {k: kernel_identity(k) for k in sorted(per_kernel)},
        "isa": isa,
        "modes": modes(per_kernel),
        "runs": runs,
        "vectors": [r["vectors"] for r in runs if r.get("vectors")],
        "benchmarks": benchmarks,
        "summary": {
            "verdict": verdict,
            "why": digest.why(runs, verdict),
            "counts": dict(sorted(counts.items())),
            "kernels": {k: {i: dict(v) for i, v in d.items()} for k, d in sorted(per_kernel.items())},
        },
    }


def all_cases(cert: dict) -> list[dict]:
    return [c for r in cert["runs"] for c in r.get("cases", [])]


SHOW_NEW_MD, SHOW_KNOWN_MD = 25, 10  # failure groups summary.md shows in full; the rest are counted


def _md_counts(cert: dict) -> list[str]:
    lines = ["| kernel | level | ran | " + " | ".join(digest.CATEGORIES) + " | cases |",
             "|---|---|---|" + "---:|" * (len(digest.CATEGORIES) + 1)]
    for kernel, per_level in digest.category_counts(cert).items():
        for level, c in per_level.items():
            lines.append(f"| {kernel} | {level} | {digest.ran(cert, kernel, level)} | "
                         + " | ".join(str(c.get(x, 0) or "") for x in digest.CATEGORIES) + f" | {sum(c.values())} |")
    return lines


def _md_groups(groups: list[digest.Group], limit: int, what: str) -> list[str]:
    if not groups:
        return [f"No {what}."]
    cases = sum(len(g.cases) for g in groups)
    lines = [f"{cases} cases in {len(groups)} groups (same test, status and first detail line across levels); "
             f"showing {min(limit, len(groups))} of {len(groups)}" + ("." if len(groups) <= limit else
                                                                       "; report.html lists every case.")]
    for i, g in enumerate(groups[:limit], 1):
        c = g.first
        lines += ["", f"### {i}. {g.status} {g.kernel}: `{g.nodeid}`", "",
                  f"levels {', '.join(g.levels)}; {len(g.cases)} case(s); convention {c.get('convention') or '-'}; "
                  f"shape {', '.join(g.shapes[:6])}" + (f" and {len(g.shapes) - 6} more" if len(g.shapes) > 6 else "")]
        if g.known_defect:
            lines += ["", f"known defect: {g.known_defect}"]
        lines += ["", "```", *digest.diagnostics(c, max_lines=6), *(f"reproduce: {r}" for r in g.reproduce), "```"]
    return lines


def _md_ratios(cert: dict) -> list[str]:
    lines = ["| kernel | level | judged | with a ratio | at 0 | over 1 | worst ratio | worst probable-tier ratio |"
             " without a ratio |", "|---|---|" + "---:|" * 7]
    levels = digest.levels(cert)
    for kernel, rows in digest.aligned(cert).items():
        for level in levels:
            st = digest.ratio_stats([r.cells[level] for r in rows if level in r.cells])
            if st.judged:
                lines.append(f"| {kernel} | {level} | {st.judged} | {len(st.rigorous)} | "
                             f"{sum(v == 0 for v in st.rigorous)} | {sum(v > 1 for v in st.rigorous)} | "
                             f"{digest.ratio(max(st.rigorous, default=None))} | "
                             f"{digest.ratio(max(st.probable, default=None))} | {st.without} |")
    return lines


def markdown(cert: dict) -> str:
    """summary.md: the HTML page's reading order in Markdown, bounded (failures grouped and capped, no matrix)."""
    s = cert["summary"]
    groups = digest.failure_groups(cert)
    orphans = digest.failing_tests_without_case(cert)
    lines = [f"# qoracle certificate: {s['verdict']}", "", f"**{s.get('why') or digest.why(cert['runs'], s['verdict'])}**",
             "", "Contents: kernels x levels, new failures, known defects, error vs bound, unavailable kernels, "
             "kernels and ISA levels, golden vectors. Every case, level by level: report.html.", "",
             f"- host: {cert['host']['cpu']} ({', '.join(cert['host']['isa_levels'])})",
             f"- GPUs: {', '.join(g['name'] for g in cert['host'].get('gpus', [])) or 'none seen by torch'}",
             f"- created: {cert['created']}, schema {cert['schema']}, oracle {cert.get('oracle_version')}",
             "", "## Kernels x levels", "", *_md_counts(cert),
             "", "## New failures", "", *_md_groups([g for g in groups if not g.known_defect], SHOW_NEW_MD, "new failures")]
    if orphans:
        lines += ["", "## Failed tests that recorded no failing case", ""]
        lines += [f"- {lv}: `{f.get('nodeid', '')}` ({f.get('when', '')}): {digest.first_line(f.get('message'))[:300]}"
                  for lv, f in orphans[:25]]
        lines += [f"- and {len(orphans) - 25} more"] if len(orphans) > 25 else []
    lines += ["", "## Known defects", "", *_md_groups([g for g in groups if g.known_defect], SHOW_KNOWN_MD, "known defects"),
              "", "## Error vs bound", "", "Worst error as a fraction of the rigorous bound and of its probable tier, "
              "per judged case; byte comparisons and crashes have no ratio.", "", *_md_ratios(cert)]
    unavailable = sorted({(c["kernel"], digest.first_line(c.get("detail"))) for c in all_cases(cert)
                          if c["status"] == "UNAVAILABLE"})
    if unavailable:
        lines += ["", "## Unavailable kernels", ""] + [f"- {k}: {why}" for k, why in unavailable]
    lines += ["", "## Kernels and ISA levels", ""]
    for name, k in cert.get("kernels", {}).items():
        if k.get("registered"):
            lines.append(f"- kernel {name}: {k['package']} {k['version'] or '(not installed here)'}, op `{k['op']}`")
    for i in cert.get("isa", []):
        if i.get("skipped"):
            lines.append(f"- --isa {i['requested']}: skipped, {i['skipped']}")
        elif i.get("observed"):
            lines.append(f"- --isa {i['requested']}: observed {', '.join(i['observed'])}")
    for v in cert.get("vectors", []):
        lines += ["", f"## Golden vectors ({v['convention']}, seed {v.get('seed')})", "",
                  f"- manifest SHA-256 {v['manifest_sha256']}"]
        lines += [f"- {f}: {h}" for f, h in sorted(v["files"].items())]
    return "\n".join(lines) + "\n"


def write_all(cert: dict, out_dir: str) -> list[str]:
    """Write certificate.json and summary.md into out_dir; return their paths."""
    js = os.path.join(out_dir, "certificate.json")
    md = os.path.join(out_dir, "summary.md")
    with open(js, "w", encoding="utf-8") as f:
        json.dump(cert, f, indent=1, sort_keys=False)
    with open(md, "w", encoding="utf-8") as f:
        f.write(markdown(cert))
    return [js, md]


def write_reports(cert: dict, out_dir: str) -> list[str]:
    """All four reports: certificate.json, summary.md, report.html and junit.xml; return their paths."""
    from reports.html import html_report
    from reports.junit import junit_xml

    os.makedirs(out_dir, exist_ok=True)
    paths = write_all(cert, out_dir)
    for name, text in (("report.html", html_report(cert)), ("junit.xml", junit_xml(cert))):
        p = os.path.join(out_dir, name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        paths.append(p)
    return paths
