"""The bench's HTML report: results JSON (a dict) in, one self-contained HTML file out.

The page holds everything inline -- styles and charts as SVG -- and loads nothing from the
network, so it can be mailed, archived or opened offline. This package never talks to DynamoDB
(it does not import boto3)::

    from dynamodb_counters.report import write_report
    write_report(json.load(open("results.json")), "counter-report/")  # writes index.html
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

__all__ = ["REPORT_FILE", "render_html", "write_report"]

REPORT_FILE = "index.html"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#212121;line-height:1.45}
h1{margin-bottom:.2rem}.sub{color:#616161;margin-top:0}
.verdict{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border-radius:8px;padding:.7rem 1rem;flex:1;min-width:260px}
.ok{background:#e8f5e9;border:1px solid #a5d6a7}.bad{background:#ffebee;border:1px solid #ef9a9a}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1.2rem}
figure{margin:0;border:1px solid #e0e0e0;border-radius:8px;padding:.6rem}
figure svg{width:100%;height:auto}figcaption{color:#616161;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:1rem 0}
th,td{border-bottom:1px solid #e0e0e0;padding:.3rem .45rem;text-align:right}
th:first-child,td:first-child{text-align:left}.drift0{color:#2e7d32;font-weight:600}
.drift{color:#c62828;font-weight:700}code{background:#f5f5f5;padding:0 .25rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;font-size:.9rem}
dt{color:#616161}.scroll{overflow-x:auto}
"""

_CAPTIONS = {
    "drift": "Final value minus the value the ledger of acknowledged requests predicts. "
    "Green bars are exact; red ones counted some requests twice (or lost some).",
    "throughput": "add() calls per second across all workers; the grey bar is plain boto3 "
    "update_item doing the same work.",
    "latency": "Time of one add() call as the application sees it, SDK and library retries "
    "included.",
    "cost": "On-demand cost of a million add() calls, from request units estimated with "
    "DynamoDB's pricing rules.",
    "window": "How long a replayed request id is recognised. Count-based windows are shown as "
    "the time this run's workload takes to push an id out.",
}


def result_rows(results: dict[str, Any], *, baseline: bool = True) -> list[dict[str, Any]]:
    """A run's rows: every strategy, then the raw boto3 baseline when it ran (and is wanted)."""
    rows = list(results.get("strategies", []))
    if baseline and results.get("baseline"):
        rows.append(results["baseline"])
    return rows


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _verdict(results: dict[str, Any]) -> str:
    rows = result_rows(results, baseline=False)
    exact = [r["name"] for r in rows if r["ledger"]["drift"] == 0]
    drifted = [f"{r['name']} ({r['ledger']['drift']:+d})" for r in rows if r["ledger"]["drift"]]
    crossed = [
        r["name"] for r in rows if r["ledger"]["floor_crossed"] or r["ledger"]["ceiling_crossed"]
    ]
    bounded = [r["name"] for r in rows if r["ledger"]["thresholds_enforced"]]
    cards = [
        f'<div class="card ok"><b>Exact</b><br>{_e(", ".join(exact) or "none")}</div>',
        f'<div class="card {"bad" if drifted else "ok"}"><b>Drifted</b><br>'
        f"{_e(', '.join(drifted) or 'none')}</div>",
    ]
    if bounded:
        text = (
            f"crossed by {', '.join(crossed)}"
            if crossed
            else f"never crossed ({', '.join(bounded)})"
        )
        cards.append(
            f'<div class="card {"bad" if crossed else "ok"}"><b>Bounds</b><br>{_e(text)}</div>'
        )
    return '<div class="verdict">' + "".join(cards) + "</div>"


def _table(results: dict[str, Any]) -> str:
    headers = [
        "strategy",
        "idempotent",
        "attempted",
        "acked",
        "dup",
        "rejected",
        "errors",
        "expected",
        "final",
        "drift",
        "ops/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "requests/op",
        "WRU/op est.",
        "RRU/op est.",
        "WRU/op rep.",
        "RRU/op rep.",
        "$/M ops",
        "window",
    ]
    rows = result_rows(results)
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for r in rows:
        c, led, lat = r["counts"], r["ledger"], r["latency_ms"]
        est, rep = r["units"]["estimated"], r["units"]["reported"]
        drift = led["drift"]
        cells = [
            _e(r["name"] + (" (baseline)" if r.get("baseline") else "")),
            "yes" if r["capabilities"]["idempotent"] else "no",
            _num(c["attempted"]),
            _num(c["acknowledged"]),
            _num(c["duplicates"]),
            _num(c["rejected"]),
            _num(c["errors"]),
            _num(led["expected"]),
            _num(led["final"]),
            f'<span class="{"drift0" if drift == 0 else "drift"}">'
            f"{'0' if drift == 0 else f'{drift:+d}'}</span>",
            _num(r["throughput"]["ops_per_s"], 0),
            _num(lat["p50"]),
            _num(lat["p95"]),
            _num(lat["p99"]),
            _num(r["requests"]["per_op"], 2),
            _num(est["wru_per_op"], 2),
            _num(est["rru_per_op"], 2),
            _num(rep["wru_per_op"], 2),
            _num(rep["rru_per_op"], 2),
            _num(r["cost"]["usd_per_million_ops"], 3),
            _e(r["capabilities"]["window"]),
        ]
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _metadata(results: dict[str, Any]) -> str:
    run = results.get("run", {})
    options = run.get("options", {})
    sdk = options.get("sdk", {})
    app = options.get("app_retry", {})
    faults = options.get("faults", {})
    mix = options.get("mix", {})
    backend = run.get("backend", {})
    versions = run.get("versions", {})
    ratio = results.get("comparison", {}).get("atomic_vs_raw_throughput")
    items = [
        ("started", run.get("started_at")),
        ("seed", f"{run.get('seed')} (faults: {run.get('fault_seed')})"),
        ("preset", run.get("preset") or "-"),
        (
            "backend",
            f"{backend.get('kind')} {backend.get('endpoint_url') or ''} "
            f"{backend.get('region') or ''}, table {backend.get('table')}",
        ),
        (
            "workers",
            f"{options.get('workers')} {'processes' if options.get('processes') else 'threads'}, "
            f"{options.get('ops')} operations each per strategy",
        ),
        (
            "counter",
            f"initial {options.get('initial')}, floor {options.get('floor')}, "
            f"ceiling {options.get('ceiling')}",
        ),
        (
            "mix",
            f"{mix.get('increment_share', 0):.0%} increments, amounts 1..{mix.get('amount')}, "
            f"{mix.get('duplicate_rate', 0):.0%} re-sent by the application",
        ),
        (
            "faults",
            f"lost answers {faults.get('lost_answer_rate', 0):.1%}, throttles "
            f"{faults.get('throttle_rate', 0):.1%}, conflicts {faults.get('conflict_rate', 0):.1%} "
            "(injected below the SDK's retries)",
        ),
        (
            "retries",
            f"SDK {sdk.get('mode')} x{sdk.get('max_attempts')}; "
            f"application {app.get('policy')} (up to {app.get('limit')})",
        ),
        ("atomic / raw boto3", "-" if ratio is None else f"{ratio:.2f} x throughput"),
        ("request units", run.get("units_note", "")),
        ("run time", f"{_num(run.get('seconds'))} s"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f"<dl>{body}</dl>"


def render_html(results: dict[str, Any]) -> str:
    """The whole report as one HTML document (str)."""
    from .charts import CHARTS

    figures = []
    for key, (title, draw) in CHARTS.items():
        figures.append(
            f'<figure id="chart-{key}">{draw(results)}'
            f"<figcaption><b>{_e(title)}.</b> {_e(_CAPTIONS[key])}</figcaption></figure>"
        )
    run = results.get("run", {})
    faults = run.get("options", {}).get("faults", {})
    subtitle = (
        f"{len(results.get('strategies', []))} strategies, "
        f"{faults.get('lost_answer_rate', 0):.0%} lost answers, seed {run.get('seed')}, "
        f"on {run.get('backend', {}).get('kind')}"
    )
    return (
        f"{_head(results)}<body>"
        "<h1>dynamodb-counters: what each counter really does</h1>"
        f"{_partial_notice(results)}"
        f'<p class="sub">{_e(subtitle)}</p>'
        f"{_verdict(results)}"
        f'<div class="grid">{"".join(figures)}</div>'
        "<h2>All figures</h2>"
        f'<div class="scroll">{_table(results)}</div>'
        "<h2>Run</h2>"
        f"{_metadata(results)}"
        "</body></html>\n"
    )


#: The page runs nothing and loads nothing: no script, no frame, no request anywhere; only its
#: own inline styles (and, should a chart ever need one, an inline ``data:`` image). A results
#: file that smuggled markup into a name would still get nothing to run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def _head(results: dict[str, Any]) -> str:
    title = "dynamodb-counters bench report" + (" (partial)" if results.get("partial") else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head>"
    )


def _partial_notice(results: dict[str, Any]) -> str:
    if not results.get("partial"):
        return ""
    run = results.get("run", {})
    unfinished = ", ".join(run.get("unfinished_targets", [])) or "none"
    return (
        '<div class="card bad"><b>Partial results.</b> The run stopped before the end '
        f"({_e(run.get('stopped_by'))}); only the targets that finished are shown. "
        f"Not finished: {_e(unfinished)}.</div>"
    )


def write_report(results: dict[str, Any], directory: str | Path) -> Path:
    """Write ``index.html`` into ``directory`` (created if needed); returns its path.

    The file is replaced atomically, never written through a symlink (see :mod:`.files`).
    """
    from .files import replace_file

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return replace_file(folder / REPORT_FILE, render_html(results))
