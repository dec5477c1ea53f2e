"""report.html: a self-contained page for a certificate (inline CSS and SVG; no scripts, fonts or links out).

It reads top down in the order a maintainer asks: the verdict and why; counts per kernel and
level; new failures, then known defects, each grouped once across levels with diagnostics and
reproduce lines; error-to-bound strips; then the full case matrix (collapsible per kernel) and
the host, kernel, ISA, performance, golden-vector and package facts. Nothing is wider than the
page: wide tables scroll inside their own box. The grouping and counting are reports/digest.py.
"""
from __future__ import annotations

from collections import defaultdict
from html import escape

from reports import digest
from reports.certificate import BAD, all_cases
from reports.svg import Strip, histogram, ratio_strips

__all__ = ["SHOW_KNOWN", "SHOW_NEW", "html_report"]

SHOW_NEW, SHOW_KNOWN = 50, 25  # failure groups shown in full; the rest are counted
_COLORS = {"BIT_EXACT": "#1e8449", "BOUNDED": "#2e86c1", "SUSPECT": "#d68910", "FAIL": "#c0392b",
           "CRASHED": "#7d3c98", "LOAD_FAILED": "#7d3c98", "UNSUPPORTED": "#a04000", "UNAVAILABLE": "#7f8c8d",
           "PASSED": "#1e8449", "KNOWN_DEFECTS": "#b9770e", "FAILED": "#c0392b", "EMPTY": "#7f8c8d"}
_CATEGORY_COLORS = {"known defect": "#fdebd0", "new failure": "#f5b7b1", "suspect": "#fad7a0",
                    "load failed": "#d7bde2"}
_SHORT = {"BIT_EXACT": "exact", "BOUNDED": "bounded", "SUSPECT": "SUSPECT", "FAIL": "FAIL", "CRASHED": "CRASHED",
          "LOAD_FAILED": "LOAD", "UNSUPPORTED": "unsupp.", "UNAVAILABLE": "n/a"}
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:16px auto;padding:0 16px;color:#222;max-width:1200px}
h1{margin:0 0 6px 0;font-size:24px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:16px 0 4px 0;overflow-wrap:anywhere}
.why{font-size:17px;margin:4px 0 12px 0} nav{font-size:13px;background:#f4f6f7;padding:6px 10px;border-radius:4px}
nav a{margin-right:12px;white-space:nowrap}
.scroll{max-width:100%;overflow-x:auto} table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top} th{background:#f4f6f7}
td.n{text-align:right;font-variant-numeric:tabular-nums} td.zero{color:#bbb}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:1px 7px;font-weight:bold;font-size:13px}
.fail{border-left:4px solid #c0392b;padding:2px 10px;margin:10px 0} .fail.known{border-left-color:#b9770e}
.meta{font-size:12px;color:#555;overflow-wrap:anywhere}
pre{background:#f8f9f9;border:1px solid #ddd;padding:6px 8px;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0}
.muted{color:#777} code{font-size:12px;overflow-wrap:anywhere} .small{font-size:12px}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px} svg.strip{width:100%;height:auto}
details{margin:6px 0} summary{cursor:pointer;font-weight:bold}
table.m{width:100%;table-layout:fixed} table.m td{overflow-wrap:anywhere;font-size:12px;padding:2px 5px}
.s-BIT_EXACT{background:#d5f5e3} .s-BOUNDED{background:#d6eaf8} .s-SUSPECT{background:#fad7a0} .s-FAIL{background:#f5b7b1}
.s-CRASHED,.s-LOAD_FAILED{background:#d7bde2} .s-UNSUPPORTED,.s-UNAVAILABLE{background:#eee;color:#777}
td.kd{background:#fdebd0}
"""
_TOC = (("why", "Verdict"), ("counts", "Kernels x levels"), ("new", "New failures"), ("known", "Known defects"),
        ("errors", "Error vs bound"), ("unavailable", "Unavailable"), ("matrix", "All cases"), ("host", "Host"),
        ("kernels", "Kernels"), ("isa", "ISA levels"), ("perf", "Performance"), ("packages", "Packages"))


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{_COLORS.get(status, "#555")}">{escape(status)}</span>'


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    h = "".join(f"<th>{escape(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(x if x.startswith("<td") else f"<td>{x}</td>" for x in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table{f" class={cls!r}" if cls else ""}><tr>{h}</tr>{body}</table></div>'


def _counts(cert: dict) -> str:
    counts = digest.category_counts(cert)
    if not counts:
        return '<p class="muted">no cases were recorded</p>'
    rows = []
    for kernel, per_level in counts.items():
        for i, (level, c) in enumerate(per_level.items()):
            cells = [f'<td rowspan="{len(per_level)}">{escape(kernel)}</td>'] if i == 0 else []
            cells.append(escape(level))
            why = cert.get("modes", {}).get(kernel, {}).get(level, {}).get("why", "")
            cells.append(f'<td title="{escape(why, quote=True)}">{escape(digest.ran(cert, kernel, level))}</td>')
            for cat in digest.CATEGORIES:
                n = c.get(cat, 0)
                bg = f' style="background:{_CATEGORY_COLORS[cat]}"' if n and cat in _CATEGORY_COLORS else ""
                cells.append(f'<td class="n{"" if n else " zero"}"{bg}>{n}</td>')
            cells.append(f'<td class="n">{sum(c.values())}</td>')
            rows.append(cells)
    return _table(["kernel", "level", "ran", *digest.CATEGORIES, "cases"], rows)


def _group(g: digest.Group) -> str:
    c = g.first
    shapes = g.shapes
    shown = ", ".join(shapes[:6]) + (f" and {len(shapes) - 6} more" if len(shapes) > 6 else "")
    meta = (f"levels {escape(', '.join(g.levels))} &middot; {len(g.cases)} case{'s' if len(g.cases) > 1 else ''}"
            f" &middot; convention {escape(str(c.get('convention') or '-'))} &middot; shape {escape(shown)}")
    text = "\n".join(digest.diagnostics(c, max_lines=8))
    known = (f'<p class="small"><b>known defect:</b> {escape(g.known_defect)}</p>' if g.known_defect else "")
    repro = "\n".join(g.reproduce)
    return (f'<div class="fail{" known" if g.known_defect else ""}"><h3>{_badge(g.status)} {escape(g.kernel)}: '
            f"<code>{escape(g.nodeid)}</code></h3><div class=\"meta\">{meta}</div>{known}"
            f"<pre>{escape(text)}</pre><pre>{escape(repro or '(no reproduce line)')}</pre></div>")


def _failures(groups: list[digest.Group], limit: int, what: str) -> str:
    if not groups:
        return f'<p class="muted">no {what}</p>'
    cases = sum(len(g.cases) for g in groups)
    note = (f'<p class="small">{cases} case{"s" if cases > 1 else ""} in {len(groups)} group{"s" if len(groups) > 1 else ""}'
            f" (same test, status and first detail line across levels); showing {min(limit, len(groups))} of "
            f"{len(groups)} groups{'' if len(groups) <= limit else '; every case is in the matrix below'}</p>")
    return note + "".join(_group(g) for g in groups[:limit])


def _orphans(cert: dict) -> str:
    rows = digest.failing_tests_without_case(cert)
    if not rows:
        return ""
    return ("<h3>Failed tests that recorded no failing case</h3>"
            + _table(["level", "test", "when", "message"],
                     [[escape(lv), f"<code>{escape(f.get('nodeid', ''))}</code>", escape(f.get("when", "")),
                       f"<pre>{escape(digest.first_line(f.get('message')))}</pre>"] for lv, f in rows[:50]]))


def _errors(cert: dict) -> str:
    levels = digest.levels(cert)
    out = []
    excluded = 0
    for kernel, rows in digest.aligned(cert).items():
        strips = []
        for level in levels:
            st = digest.ratio_stats([r.cells[level] for r in rows if level in r.cells])
            excluded += st.not_judged
            if st.judged:
                strips.append(Strip(level, st.rigorous, st.probable, st.caption))
        if strips:
            out.append(ratio_strips(kernel, strips))
    out += _offline_histograms(cert)
    if not out:
        return '<p class="muted">no case was judged</p>'
    note = ('<p class="small">Each case\'s worst error as a fraction of its rigorous bound (bars up; red past the '
            "dashed 1.0 line) and of the bound's probable tier (bars down), log scale, quarter decades; a bar's "
            "height is its count over the level's fullest bin (hover for the count). Under each level: its judged "
            "cases = those with a ratio + those without one (byte comparisons and crashes have no ratio), and how "
            "many carry a probable-tier ratio. Not drawn: cases never judged "
            f"(unsupported, unavailable, load failed: {excluded}).</p>")
    return note + '<div class="plots">' + "".join(out) + "</div>"


_RATIO_LABELS = ["0", "<1/64", "<1/16", "<1/4", "<1/2", "<=1", ">1"]


def _offline_histograms(cert: dict) -> list[str]:
    """Per-element ratio and fp16 ULP histograms of offline runs (qoracle verify records them per case)."""
    groups: dict[str, dict] = {}
    for c in all_cases(cert):
        h = c.get("histogram")
        if not h:
            continue
        g = groups.setdefault(c.get("convention") or c["kernel"], {"ratio": [0] * 7, "ulp": defaultdict(int)})
        g["ratio"] = [a + b for a, b in zip(g["ratio"], h["ratio_counts"])]
        for u, n in h.get("model_ulp_counts", {}).items():
            g["ulp"][int(u)] += n
    out = []
    for name, g in sorted(groups.items()):
        out.append(histogram(_RATIO_LABELS, g["ratio"], title="error/bound per output element (offline)",
                             subtitle=name, bad_from=6))
        if g["ulp"]:
            top = max(g["ulp"])
            labels = [str(u) if u < 16 else ">=16" for u in range(top + 1)]
            out.append(histogram(labels, [g["ulp"].get(u, 0) for u in range(top + 1)],
                                 title="fp16 ULPs from the bit-exact model", subtitle=name, bad_from=1))
    return out


def _cell(c: dict | None, skipped: bool) -> str:
    if c is None:
        return f'<td class="muted">{"skipped" if skipped else "-"}</td>'
    st = c["status"]
    text = _SHORT[st]
    m = c.get("mismatch") or {}
    if st == "FAIL" and c.get("worst_ratio") is None and m.get("count"):
        text += f" {m['count']} bad"
    elif c.get("worst_ratio") is not None:
        text += f" {digest.ratio(c['worst_ratio'])}"
    known = st in BAD and c.get("known_defect")
    if known:
        text += " (known)"
    tip = f' title="{escape(digest.first_line(c.get("detail"))[:200])}"' if st not in ("BIT_EXACT", "BOUNDED") else ""
    return f'<td class="{"kd" if known else f"s-{st}"}"{tip}>{escape(text)}</td>'


def _matrix(cert: dict) -> str:
    levels = digest.levels(cert)
    skipped = {r["isa_requested"] for r in cert["runs"] if r.get("skipped")}
    rows_by_kernel = digest.aligned(cert)
    if not rows_by_kernel:
        return '<p class="muted">no cases were judged</p>'
    head = "".join(f"<th>{escape(lv)}</th>" for lv in levels)
    cols = '<col style="width:38%"><col style="width:16%"><col style="width:10%">' + "<col>" * len(levels)
    out = ['<p class="small">One row per case, aligned across levels by its test and its ordinal among that '
           "test's cases (the hypothesis profile draws the same cases at every level). A cell: status, worst "
           "error/bound ratio or the number of bad elements; hover a failing cell for its detail.</p>"]
    for kernel, rows in rows_by_kernel.items():
        bad = sum(1 for r in rows for c in r.cells.values() if digest.is_new(c))
        label = f"{kernel}: {len(rows)} case{'s' if len(rows) != 1 else ''}" + (f", {bad} new failures" if bad else "")
        body = []
        for r in rows:
            c = r.any_case
            test = r.nodeid.split("/", 1)[-1] + (f" #{r.ordinal + 1}" if r.ordinal else "")
            body.append(f"<tr><td><code>{escape(test)}</code></td><td>{escape(str(c.get('convention') or '-'))}</td>"
                        f"<td>{escape('x'.join(map(str, c.get('shape') or [])) or '-')}</td>"
                        + "".join(_cell(r.cells.get(lv), lv in skipped) for lv in levels) + "</tr>")
        out.append(f"<details{' open' if bad else ''}><summary>{escape(label)}</summary><div class=\"scroll\">"
                   f'<table class="m">{cols}<tr><th>test</th><th>convention</th><th>shape</th>{head}</tr>'
                   + "".join(body) + "</table></div></details>")
    return "".join(out)


def _perf(cert: dict) -> str:
    rows = cert.get("benchmarks")
    if not rows:
        return '<p class="muted">no benchmark figures</p>'

    def f(v, scale=1.0, digits=3):
        return "-" if v is None else f"{v * scale:.{digits}g}"
    return _table(["benchmark", "mean latency (us)", "stddev (us)", "rounds", "GB/s", "TOPS", "fraction of peak"],
                  [[escape(r["name"]), f(r["mean_s"], 1e6), f(r["stddev_s"], 1e6), str(r["rounds"]), f(r["gbps"]),
                    f(r["tops"]), f(r["peak_fraction"])] for r in rows])


def _facts(cert: dict) -> list[str]:
    """Host, kernels, ISA levels, performance, golden vectors, packages: the record, after the reading."""
    h = cert["host"]
    parts = ['<h2 id="host">Host</h2>',
             _table(["CPU", "machine", "ISA levels", "GPUs"],
                    [[escape(h["cpu"]), escape(h["machine"]), escape(", ".join(h["isa_levels"])),
                      escape(", ".join(g.get("name", "") for g in h.get("gpus", [])) or "none seen by torch")]]),
             f"<p class='small muted'>flags: {escape(' '.join(h['flags']))}</p>", '<h2 id="kernels">Kernels</h2>']
    ks = cert.get("kernels", {})
    parts.append(_table(["kernel", "package", "version here", "op", "conventions"], [
        [escape(n), escape(k.get("package", "(not registered)")), escape(k.get("version") or "not installed here"),
         f"<code>{escape(k.get('op', ''))}</code>", escape(", ".join(k.get("conventions", [])))] for n, k in ks.items()])
                 if ks else '<p class="muted">no kernels</p>')
    isa_rows = [[escape(i["requested"]), escape(", ".join(i["observed"]) or "-"), escape(i.get("skipped") or ""),
                 escape(str(i.get("pytest_exit_code")))] for i in cert.get("isa", [])]
    parts += ['<h2 id="isa">ISA levels</h2>', _table(["requested", "observed", "skipped because", "pytest exit"], isa_rows),
              '<h2 id="perf">Performance</h2>', _perf(cert)]
    for v in cert.get("vectors", []):
        parts += [f"<h2>Golden vectors: {escape(v['convention'])}, seed {escape(str(v.get('seed')))}</h2>",
                  f"<p>manifest SHA-256 <code>{escape(v['manifest_sha256'])}</code></p>",
                  _table(["file", "SHA-256"], [[escape(f), f"<code>{escape(d)}</code>"] for f, d in sorted(v["files"].items())])]
    parts += ['<h2 id="packages">Packages</h2>',
              _table(["package", "version"], [[escape(p), escape(str(v))] for p, v in cert["packages"].items()])]
    return parts


def html_report(cert: dict) -> str:
    s = cert["summary"]
    groups = digest.failure_groups(cert)
    new = [g for g in groups if not g.known_defect]
    known = [g for g in groups if g.known_defect]
    unavailable = sorted({(c["kernel"], digest.first_line(c.get("detail"))) for c in all_cases(cert)
                          if c["status"] == "UNAVAILABLE"})
    parts = [f'<h1 id="why">qoracle certificate {_badge(s["verdict"])}</h1>',
             f'<p class="why">{escape(s.get("why") or digest.why(cert["runs"], s["verdict"]))}</p>',
             f"<p class='small muted'>schema <code>{escape(cert['schema'])}</code>, oracle "
             f"{escape(str(cert.get('oracle_version')))}, created {escape(cert['created'])}, profile "
             f"{escape(str(cert['selection'].get('profile')))}</p>",
             "<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in _TOC) + "</nav>",
             '<h2 id="counts">Kernels x levels</h2>', _counts(cert),
             '<h2 id="new">New failures</h2>', _failures(new, SHOW_NEW, "new failures"), _orphans(cert),
             '<h2 id="known">Known defects</h2>', _failures(known, SHOW_KNOWN, "known defects"),
             '<h2 id="errors">Error vs bound</h2>', _errors(cert),
             '<h2 id="unavailable">Unavailable</h2>',
             ("<ul>" + "".join(f"<li>{escape(k)}: {escape(w)}</li>" for k, w in unavailable) + "</ul>") if unavailable
             else '<p class="muted">every kernel was available</p>',
             '<h2 id="matrix">All cases</h2>', _matrix(cert), *_facts(cert)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>qoracle certificate: {escape(s['verdict'])}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
