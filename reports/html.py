"""report.html: a self-contained page for a certificate (inline CSS and SVG; no scripts, fonts or links out).

Sections: verdict; the verdict matrix (kernel / convention / shape
rows, one column per ISA level or offline run; a cell shows the worst status of its cases and
the worst error-to-bound ratio, or the number of bad elements of a FAIL); host; kernel identity;
ISA levels requested and observed; error distributions (per-case worst error/bound ratios, and
for offline verification the per-element ratios and ULP distances to the bit-exact model);
failures with their details; the performance table from pytest-benchmark figures, or "no
benchmark figures"; golden-vector hashes; reproduce commands; package versions.
"""
from __future__ import annotations

from collections import defaultdict
from html import escape

from reports.certificate import BAD, STATUSES, all_cases
from reports.svg import histogram

__all__ = ["html_report"]

_SEVERITY = {"LOAD_FAILED": 0, "CRASHED": 1, "FAIL": 2, "SUSPECT": 3, "UNSUPPORTED": 4, "UNAVAILABLE": 5,
             "BOUNDED": 6, "BIT_EXACT": 7}
_COLORS = {"BIT_EXACT": "#1e8449", "BOUNDED": "#2e86c1", "SUSPECT": "#d68910", "FAIL": "#c0392b",
           "CRASHED": "#7d3c98", "LOAD_FAILED": "#7d3c98", "UNSUPPORTED": "#a04000", "UNAVAILABLE": "#7f8c8d",
           "PASSED": "#1e8449", "KNOWN_DEFECTS": "#b9770e", "FAILED": "#c0392b", "EMPTY": "#7f8c8d"}
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1300px}
h1{margin:0 0 8px 0} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f7} .badge{display:inline-block;color:#fff;border-radius:4px;padding:2px 8px;font-weight:bold}
.cell{min-width:120px;color:#fff;font-weight:bold;text-align:center;white-space:nowrap} .small{font-size:11px;font-weight:normal}
pre{background:#f8f9f9;border:1px solid #ddd;padding:8px;overflow-x:auto;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:16px} .muted{color:#777} code{font-size:12px}
"""
_RATIO_LABELS = ["0", "<1/64", "<1/16", "<1/4", "<1/2", "<=1", ">1"]


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{_COLORS.get(status, "#555")}">{escape(status)}</span>'


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{escape(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{x}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _shape(c: dict) -> str:
    return "x".join(str(d) for d in c.get("shape", [])) or "-"


def _matrix(cert: dict) -> str:
    columns = [r["isa_requested"] for r in cert["runs"]]
    skipped = {r["isa_requested"] for r in cert["runs"] if r.get("skipped")}
    cells: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in cert["runs"]:
        for c in run.get("cases", []):
            cells[(c["kernel"], c.get("convention") or "-", tuple(c.get("shape", [])))][run["isa_requested"]].append(c)
    if not cells:
        return '<p class="muted">no cases were judged</p>'
    rows = []
    for key in sorted(cells):
        row = [escape(key[0]), escape(key[1]), escape("x".join(map(str, key[2])) or "-")]
        for col in columns:
            cs = cells[key].get(col)
            if not cs:
                row.append('<span class="muted">skipped</span>' if col in skipped else '<span class="muted">-</span>')
                continue
            worst = min(cs, key=lambda c: _SEVERITY.get(c["status"], -1))["status"]
            ratios = [c["worst_ratio"] for c in cs if isinstance(c.get("worst_ratio"), (int, float))]
            bad = [c["mismatch"].get("count", 1) for c in cs if c["status"] == "FAIL" and c.get("mismatch")]
            if bad:
                extra = f"<br><span class='small'>{sum(bad)} bad elements</span>"
            else:
                extra = f"<br><span class='small'>ratio {max(ratios):.3g}</span>" if ratios and worst != "FAIL" else ""
            n = f" x{len(cs)}" if len(cs) > 1 else ""
            tip = escape("; ".join(f"{c['status']}: {c.get('detail', '')}"[:160] for c in cs[:5]))
            row.append(f'<div class="cell" title="{tip}" style="background:{_COLORS.get(worst, "#555")}">'
                       f"{escape(worst)}{n}{extra}</div>")
        rows.append(row)
    head = ["kernel", "convention", "shape (MxKxN)"] + [f"--isa {c}" if c != "offline" else "offline" for c in columns]
    return _table(head, rows)


def _ratio_bin(c: dict) -> int | None:
    r = c.get("worst_ratio")
    if c["status"] == "FAIL" and c.get("mismatch") and c["mismatch"].get("bound") is not None:
        return 6
    if not isinstance(r, (int, float)):
        return None
    for i, edge in enumerate((0.0, 1 / 64, 1 / 16, 1 / 4, 1 / 2, 1.0)):
        if (r <= edge) if i in (0, 5) else (r < edge):
            return i
    return 6


def _plots(cert: dict) -> str:
    cases = all_cases(cert)
    out = []
    per_case = [0] * 7
    for c in cases:
        b = _ratio_bin(c)
        if b is not None:
            per_case[b] += 1
    if sum(per_case):
        out.append(histogram(_RATIO_LABELS, per_case, title="worst error/bound ratio per case",
                             subtitle="FAIL cases counted as >1", bad_from=6))
    groups: dict[str, dict] = {}
    for c in cases:
        h = c.get("histogram")
        if not h:
            continue
        g = groups.setdefault(c.get("convention") or c["kernel"], {"ratio": [0] * 7, "ulp": defaultdict(int)})
        g["ratio"] = [a + b for a, b in zip(g["ratio"], h["ratio_counts"])]
        for u, n in h.get("model_ulp_counts", {}).items():
            g["ulp"][int(u)] += n
    for name, g in sorted(groups.items()):
        out.append(histogram(_RATIO_LABELS, g["ratio"], title="error/bound per output element", subtitle=name, bad_from=6))
        if g["ulp"]:
            top = max(g["ulp"])
            labels = [str(u) if u < 16 else ">=16" for u in range(top + 1)]
            out.append(histogram(labels, [g["ulp"].get(u, 0) for u in range(top + 1)],
                                 title="fp16 ULPs from the bit-exact model", subtitle=name, bad_from=1))
    if not out:
        return '<p class="muted">no error distributions: no case carried an error-to-bound ratio</p>'
    return '<div class="plots">' + "".join(out) + "</div>"


def _perf(cert: dict) -> str:
    rows = cert.get("benchmarks")
    if not rows:
        return '<p class="muted">no benchmark figures</p>'
    def f(v, scale=1.0, digits=3):
        return "-" if v is None else f"{v * scale:.{digits}g}"
    return _table(["benchmark", "mean latency (us)", "stddev (us)", "rounds", "GB/s", "TOPS", "fraction of peak"],
                  [[escape(r["name"]), f(r["mean_s"], 1e6), f(r["stddev_s"], 1e6), str(r["rounds"]), f(r["gbps"]),
                    f(r["tops"]), f(r["peak_fraction"])] for r in rows])


def html_report(cert: dict) -> str:
    s, h = cert["summary"], cert["host"]
    parts = [f"<h1>qoracle certificate {_badge(s['verdict'])}</h1>",
             f"<p>schema <code>{escape(cert['schema'])}</code>, oracle {escape(str(cert.get('oracle_version')))}, "
             f"created {escape(cert['created'])}</p>",
             _table(["status", *STATUSES], [["cases", *(str(s["counts"].get(x, 0)) for x in STATUSES)]]),
             "<h2>Verdict matrix</h2>", _matrix(cert),
             "<h2>Host</h2>",
             _table(["CPU", "machine", "ISA levels", "GPUs"],
                    [[escape(h["cpu"]), escape(h["machine"]), escape(", ".join(h["isa_levels"])),
                      escape(", ".join(g.get("name", "") for g in h.get("gpus", [])) or "none seen by torch")]]),
             f"<p class='small muted'>flags: {escape(' '.join(h['flags']))}</p>"]
    ks = cert.get("kernels", {})
    if ks:
        parts += ["<h2>Kernels</h2>", _table(["kernel", "package", "version here", "op", "conventions"], [
            [escape(n), escape(k.get("package", "(not registered)")), escape(k.get("version") or "not installed here"),
             f"<code>{escape(k.get('op', ''))}</code>", escape(", ".join(k.get("conventions", [])))] for n, k in ks.items()])]
    isa_rows = [[escape(i["requested"]), escape(", ".join(i["observed"]) or "-"), escape(i.get("skipped") or ""),
                 escape(str(i.get("pytest_exit_code")))] for i in cert.get("isa", [])]
    parts += ["<h2>ISA levels</h2>", _table(["requested", "observed", "skipped because", "pytest exit"], isa_rows),
              "<h2>Error distributions</h2>", _plots(cert)]
    bad = [c for c in all_cases(cert) if c["status"] in BAD]
    if bad:
        parts.append("<h2>Failures</h2>")
        for c in bad[:50]:
            m = c.get("mismatch") or {}
            extra = (f"\nfirst bad element {m.get('index')}: expected {m.get('expected')!r} ({m.get('expected_hex')}), "
                     f"actual {m.get('actual')!r} ({m.get('actual_hex')}), bound {m.get('bound')!r}") if m else ""
            parts.append(f"<h3>{escape(c['kernel'])} {escape(c.get('convention') or '')} {escape(_shape(c))} at "
                         f"{escape(c['isa_requested'])}: {_badge(c['status'])}</h3>"
                         f"<pre>{escape(c.get('detail', '') + extra)}\nreproduce: {escape(c.get('reproduce', ''))}</pre>")
    unavailable = sorted({(c["kernel"], c.get("detail", "")) for c in all_cases(cert) if c["status"] == "UNAVAILABLE"})
    if unavailable:
        parts += ["<h2>Unavailable</h2>", "<ul>" + "".join(f"<li>{escape(k)}: {escape(w)}</li>" for k, w in unavailable) + "</ul>"]
    parts += ["<h2>Performance</h2>", _perf(cert)]
    for v in cert.get("vectors", []):
        parts += [f"<h2>Golden vectors: {escape(v['convention'])}, seed {escape(str(v.get('seed')))}</h2>",
                  f"<p>manifest SHA-256 <code>{escape(v['manifest_sha256'])}</code></p>",
                  _table(["file", "SHA-256"], [[escape(f), f"<code>{escape(d)}</code>"] for f, d in sorted(v["files"].items())])]
    repro = sorted({c.get("reproduce", "") for c in all_cases(cert) if c.get("reproduce")})
    parts += ["<h2>Reproduce</h2>", "<pre>" + escape("\n".join(repro[:200]) or "(no cases)") + "</pre>",
              "<h2>Packages</h2>", _table(["package", "version"], [[escape(p), escape(str(v))] for p, v in cert["packages"].items()])]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>qoracle certificate: {escape(s['verdict'])}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
