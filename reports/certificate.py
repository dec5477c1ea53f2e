"""The certificate: every judged case of a run, with the host and package identity, as JSON.

Schema `qoracle-certificate/1` (documented in docs/certificate.md):
  schema, oracle_version, created (UTC ISO time), host {cpu, isa_levels, flags}, packages
  {name: version or null}, runs [{isa_requested, skipped?, pytest_exit_code, cases [...]}],
  summary {verdict PASSED|FAILED|EMPTY, counts {status: n}, kernels {kernel: {isa: {status: n}}}}.
A case is what conformance/conftest.py records: nodeid, kernel, isa_requested, isa_observed,
shape, status (BIT_EXACT, BOUNDED, FAIL, CRASHED, UNAVAILABLE), convention, what, detail,
mismatch, metrics, worst_ratio, reproduce.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections import Counter, defaultdict
from importlib import metadata

from kernels.isa import ORDER, host_flags, levels_on_host

SCHEMA = "qoracle-certificate/1"
PACKAGES = ("qoracle", "numpy", "ml_dtypes", "torch", "onnxruntime", "llama_cpp_python", "gguf",
            "auto-round-lib", "torchao", "triton")
BAD = ("FAIL", "CRASHED")


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


def host() -> dict:
    flags = host_flags()
    wanted = {f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sse4"))}
    return {"cpu": _cpu_model(), "machine": platform.machine(), "isa_levels": levels_on_host(flags),
            "flags": sorted(wanted), "known_levels": list(ORDER)}


def build(runs: list[dict], *, kernels: list[str], profile: str) -> dict:
    counts: Counter[str] = Counter()
    per_kernel: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    failed_run = False
    for run in runs:
        failed_run |= run.get("pytest_exit_code") not in (0, 5, None)
        for c in run.get("cases", []):
            counts[c["status"]] += 1
            per_kernel[c["kernel"]][run["isa_requested"]][c["status"]] += 1
    if failed_run or any(counts[s] for s in BAD):
        verdict = "FAILED"
    else:
        verdict = "PASSED" if counts else "EMPTY"  # nothing judged is not a pass
    return {
        "schema": SCHEMA,
        "oracle_version": _version("qoracle"),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "selection": {"kernels": kernels, "profile": profile},
        "host": host(),
        "packages": {p: _version(p) for p in PACKAGES},
        "runs": runs,
        "summary": {
            "verdict": verdict,
            "counts": dict(sorted(counts.items())),
            "kernels": {k: {isa: dict(v) for isa, v in d.items()} for k, d in sorted(per_kernel.items())},
        },
    }


def markdown(cert: dict) -> str:
    s = cert["summary"]
    lines = [f"# qoracle certificate: {s['verdict']}", "",
             f"- host: {cert['host']['cpu']} ({', '.join(cert['host']['isa_levels'])})",
             f"- created: {cert['created']}, schema {cert['schema']}", ""]
    for run in cert["runs"]:
        if run.get("skipped"):
            lines.append(f"- --isa {run['isa_requested']}: skipped, {run['skipped']}")
    lines += ["", "| kernel | isa | " + " | ".join(("BIT_EXACT", "BOUNDED", "FAIL", "CRASHED", "UNAVAILABLE")) + " |",
              "|---|---|---|---|---|---|---|"]
    for k, d in s["kernels"].items():
        for isa, c in d.items():
            lines.append(f"| {k} | {isa} | " + " | ".join(str(c.get(x, 0)) for x in
                                                          ("BIT_EXACT", "BOUNDED", "FAIL", "CRASHED", "UNAVAILABLE")) + " |")
    bad = [c for r in cert["runs"] for c in r.get("cases", []) if c["status"] in BAD]
    if bad:
        lines += ["", "## Failures", ""]
        for c in bad:
            lines += [f"### {c['kernel']} at --isa {c['isa_requested']}: {c['status']}", "", "```",
                      c.get("detail", ""), f"reproduce: {c.get('reproduce', '')}", "```", ""]
    unavailable = {(c["kernel"], c.get("detail", "")) for r in cert["runs"] for c in r.get("cases", [])
                   if c["status"] == "UNAVAILABLE"}
    if unavailable:
        lines += ["", "## Unavailable kernels", ""] + [f"- {k}: {why}" for k, why in sorted(unavailable)]
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
