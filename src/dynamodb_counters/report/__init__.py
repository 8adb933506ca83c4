"""The bench's HTML report: results JSON in, one self-contained HTML file out.

The page holds everything inline -- styles and charts as SVG -- and loads nothing from the
network, so it can be mailed, archived or opened offline. Its shape is one Jinja2 template,
``templates/report.html``, rendered with autoescaping: this module only gathers the figures
(text, never markup, except the page's own style and the charts' SVG). This package never talks
to DynamoDB (it does not import boto3). What it reads is declared in :mod:`.schema` (typed,
versioned), the very types the bench writes::

    from dynamodb_counters.report import read_results, write_report
    results = read_results(json.load(open("results.json")))  # checks schema and version
    write_report(results, "counter-report/")  # writes index.html
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .schema import SCHEMA_VERSION, BenchResults, Spread, TargetResult, read_results
from .verdict import LEGEND, verdict_line, verdict_of

__all__ = [
    "LEGEND",
    "REPORT_FILE",
    "SCHEMA_VERSION",
    "BenchResults",
    "TargetResult",
    "ops_per_s",
    "read_results",
    "render_html",
    "result_rows",
    "verdict_line",
    "verdict_of",
    "workers_kind",
    "write_report",
]

REPORT_FILE = "index.html"

#: Nothing wider than a phone (360 px and up) is fixed: the chart grid's columns shrink to the
#: page, every table sits in a box that scrolls sideways on its own (tests/test_report.py checks
#: both rules, and the page at 390 px in a real browser where there is one). On a phone a
#: table's prose column (verdicts, windows) keeps a readable width: its box scrolls instead.
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#212121;line-height:1.45}
h1{margin-bottom:.2rem;overflow-wrap:anywhere}.sub{color:#616161;margin-top:0}
.verdict{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border-radius:8px;padding:.7rem 1rem;flex:1;min-width:min(100%,260px)}
.ok{background:#e8f5e9;border:1px solid #a5d6a7}.bad{background:#ffebee;border:1px solid #ef9a9a}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));gap:1.2rem}
figure{margin:0;border:1px solid #e0e0e0;border-radius:8px;padding:.6rem;min-width:0}
figure svg{width:100%;height:auto}figcaption{color:#616161;font-size:.9rem}
.scroll{overflow-x:auto;max-width:100%;margin:1rem 0}
table{border-collapse:collapse;width:100%;font-size:.85rem}
dd{margin:0;overflow-wrap:anywhere;min-width:0}ul.scale li{margin:.2rem 0}
@media (max-width:600px){body{margin:1rem auto;padding:0 .6rem}
table{font-size:.78rem}th,td{padding:.25rem .3rem}
table.which thead{display:none}table.which tr,table.which td{display:block}
table.which tr{border-bottom:1px solid #e0e0e0;padding:.4rem 0}table.which td{border:0}
table.prose td:last-child{min-width:18rem}}
th,td{border-bottom:1px solid #e0e0e0;padding:.3rem .45rem;text-align:right}
th:first-child,td:first-child{text-align:left}.drift0{color:#2e7d32;font-weight:600}
.drift{color:#c62828;font-weight:700}code{background:#f5f5f5;padding:0 .25rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;font-size:.9rem}
dt{color:#616161}.read{margin:.3rem 0 0;color:#424242}
.which td,.which th{text-align:left;vertical-align:top}.which td:first-child{font-weight:600}
.why{color:#616161;font-size:.8rem}.warn{color:#c62828}
table.fig td:last-child,table.fig th:last-child{text-align:left}
.legend{color:#616161;font-size:.85rem}
"""

_CAPTIONS = {
    "drift": (
        "Final value minus the value the ledger of acknowledged requests predicts (units: the "
        "counter's own, e.g. seats). A net figure: an add counted twice up and one counted "
        "twice down cancel, so the verdicts below also count adds that met lost answers.",
        "Read: a bar at 0 ('exact') is what you want; any other bar counted adds twice or "
        "lost them.",
    ),
    "throughput": (
        "add() calls per second across all workers, the median of the rounds; the whisker "
        "spans the slowest to the fastest round. The grey bar is plain boto3 update_item "
        "doing the same work, meeting the same faults.",
        "Read: longer is faster; overlapping whiskers mean the difference is noise.",
    ),
    "latency": (
        "Time of one add() call as the application sees it, SDK and library retries included, "
        "in milliseconds.",
        "Read: shorter is better; p99 is the slowest 1 in 100 calls.",
    ),
    "cost": (
        "On-demand USD per million acknowledged add() calls (their retries and duplicate "
        "sends included), from request units estimated with DynamoDB's pricing rules; "
        "refused adds are priced apart (hatched), because a run that hits its floor often "
        "makes a strategy with cheap refusals look cheap.",
        "Read: shorter is cheaper; compare strategies that keep the promises you need.",
    ),
    "window": (
        "How long a replayed request id is still recognised. Count-based windows are shown "
        "as the time this run's applied adds took to push an id out.",
        "Read: longer bars tolerate later retries; grey means a retry counts again.",
    ),
}


def result_rows(results: BenchResults, *, baseline: bool = True) -> list[TargetResult]:
    """A run's rows: every strategy, then the raw boto3 baseline when it ran (and is wanted)."""
    rows = list(results.get("strategies", []))
    raw = results.get("baseline")
    if baseline and raw:
        rows.append(raw)
    return rows


def ops_per_s(row: TargetResult) -> float:
    """The throughput a row is shown with everywhere (chart, tables, "Which strategy?"): the
    median of its rounds, or the whole run's rate where it ran in one round."""
    spread = row["throughput"].get("ops_per_s_spread") or {}
    median = spread.get("median")
    return float(row["throughput"]["ops_per_s"] if median is None else median)


#: A table cell: text, or a list of pieces ``{"text", "css"?, "tag"?, "br"?}`` the template
#: turns into spans, bold and line breaks (escaping every text).
Cell = str | list[dict[str, Any]]


def _span(text: Any, css: str, *, br: bool = False) -> dict[str, Any]:
    return {"text": str(text), "css": css, "br": br}


def _marked_up(text: str) -> Cell:
    """Text that names code between backticks (a strategy's capabilities, written for the
    terminal too): the names as ``<code>``, never the backticks themselves."""
    if "`" not in text:
        return text
    parts = text.split("`")
    return [
        {"text": part, "tag": "code"} if odd else {"text": part}
        for odd, part in ((i % 2 == 1, part) for i, part in enumerate(parts))
        if part
    ]


def _table_of(
    headers: list[str], rows: list[list[Cell]], css: str = "fig", title: str = ""
) -> dict[str, Any]:
    return {"headers": headers, "rows": rows, "css": css, "title": title}


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _cards(results: BenchResults) -> list[dict[str, str]]:
    """The three boxes at the top: exact, drifted, bounds."""
    rows = result_rows(results, baseline=False)
    verdicts = [(r["name"], verdict_of(r)) for r in rows]
    exact = [name for name, v in verdicts if v["kind"] == "exact"]
    drifted = [
        f"{r['name']} ({r['ledger']['drift']:+d})"
        for r, (_, v) in zip(rows, verdicts, strict=True)
        if v["kind"] == "drifted"
    ]
    crossed = [f"{n}: {v['text']}" for n, v in verdicts if v["kind"] in ("oversold", "unenforced")]
    bounded = [r["name"] for r in rows if r["ledger"]["thresholds_enforced"]]
    cards = [
        {"css": "ok", "title": "Exact", "text": ", ".join(exact) or "none"},
        {
            "css": "bad" if drifted else "ok",
            "title": "Drifted",
            "text": ", ".join(drifted) or "none",
        },
    ]
    if bounded or crossed:
        text = "; ".join(crossed) if crossed else f"never crossed ({', '.join(bounded)})"
        cards.append({"css": "bad" if crossed else "ok", "title": "Bounds", "text": text})
    return cards


def _spread(figure: Spread | None, digits: int = 0) -> str:
    if not figure:
        return "-"
    middle, least, most = figure.get("median"), figure.get("min"), figure.get("max")
    if middle is None or least is None or most is None:
        return "-"
    median = _num(float(middle), digits)
    if least == most:
        return median
    low, high = _num(float(least), digits), _num(float(most), digits)
    return f"{median} ({low}\u2013{high})"


def _name_cell(r: TargetResult) -> str:
    return r["name"] + (" (baseline)" if r.get("baseline") else "")


def _tables(results: BenchResults) -> list[dict[str, Any]]:
    """Every figure, in three tables narrow enough for a laptop screen (no side scrolling)."""
    rows = result_rows(results)
    correctness: list[list[Cell]] = []
    for r in rows:
        c, led = r["counts"], r["ledger"]
        drift = led["drift"]
        low, high = c.get("outcome_unknown_range") or [0, 0]
        correctness.append(
            [
                _name_cell(r),
                "yes" if r["capabilities"]["idempotent"] else "no",
                _num(c["attempted"]),
                _num(c["acknowledged"]),
                _num(c["rejected"]),
                _num(c["errors"]),
                "?" if c.get("unknown") else _num(c["duplicates"]),
                _num(c.get("outcome_unknown", 0))
                + (f" ({low:+d}..{high:+d})" if c.get("outcome_unknown") else ""),
                _num(led["expected"]),
                _num(led["final"]),
                [_span("0" if drift == 0 else f"{drift:+d}", "drift0" if drift == 0 else "drift")],
                verdict_line(r),
            ]
        )
    speed: list[list[Cell]] = []
    for r in rows:
        lat, thr = r["latency_ms"], r["throughput"]
        speed.append(
            [
                _name_cell(r),
                _spread(thr.get("ops_per_s_spread"))
                if thr.get("rounds", 0) > 1
                else _num(thr["ops_per_s"], 0),
                _num(lat["p50"]),
                _num(lat["p95"]),
                _num(lat["p99"]),
                _spread(lat.get("p99_spread")) if thr.get("rounds", 0) > 1 else "-",
                _num(r["requests"]["per_op"], 2),
                _marked_up(r["capabilities"]["window"]),
            ]
        )
    cost: list[list[Cell]] = []
    for r in rows:
        est, rep = r["units"]["estimated"], r["units"]["reported"]
        money = r["cost"]
        read = r.get("value_read") or {}
        cost.append(
            [
                _name_cell(r),
                _num(est["wru_per_op"], 2),
                _num(est["rru_per_op"], 2),
                f"{_num(rep['wru_per_op'], 2)} / {_num(rep['rru_per_op'], 2)}",
                _num(rep.get("answers_without_capacity")),
                _num(money.get("usd_per_million_acked"), 3),
                _num(money.get("usd_per_million_rejected"), 3),
                _num(money["usd_per_million_ops"], 3),
                "-"
                if not read
                else f"{_num(read.get('rru'), 1)} RRU"
                + (
                    f" at {_num(read.get('items_in_partition'))} items"
                    if r["name"] == "collection"
                    else ""
                ),
            ]
        )
    return [
        _table_of(
            [
                "strategy",
                "idempotent",
                "attempted",
                "acked",
                "rejected",
                "errors",
                "dup",
                "unknown outcome",
                "expected",
                "final",
                "drift",
                "verdict",
            ],
            correctness,
            css="fig prose",
            title="Correctness",
        ),
        _table_of(
            [
                "strategy",
                "ops/s median (min\u2013max)",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "p99 ms over rounds",
                "requests/op",
                "idempotency window",
            ],
            speed,
            css="fig prose",
            title="Speed",
        ),
        _table_of(
            [
                "strategy",
                "WRU/op est.",
                "RRU/op est.",
                "reported WRU / RRU per op",
                "answers without capacity",
                "$/M acked adds",
                "$/M refused adds",
                "$/M attempts",
                "one value() read",
            ],
            cost,
            title="Units and cost",
        ),
    ]


_UNITS_LEGEND = (
    "est.: request units by DynamoDB's pricing rules; reported: what the backend returned as "
    "ConsumedCapacity, which error answers (failed conditions, refused adds) and lost answers "
    "do not carry (counted in 'answers without capacity'); DynamoDB Local under-reports "
    "transactions. $/M acked adds: the units of the adds that were acknowledged, retries and "
    "duplicate sends included, per acknowledged add; refused adds are priced apart. "
    "'unknown outcome': adds that ended in an error after a lost answer, so may have landed; "
    "they are not in the ledger, and the range is what they could add to the drift. "
    "dup '?': the strategy answered applied=None (it could not tell a duplicate)."
)


def _which(results: BenchResults) -> dict[str, Any]:
    from ..advise import describe_options
    from .which import decisions

    rows: list[list[Cell]] = []
    for d in decisions(results):
        measured = d["measured"]
        choice: Cell
        if d["choice"] is None:
            choice = [{"text": "none", "tag": "b"}]
            figures = "-"
        else:
            choice = [{"text": d["choice"], "tag": "b"}, {"text": describe_options(d["options"])}]
            if measured is None:
                figures = f"not measured here; ${d['expected_usd']:.3f}/M by the pricing rules"
            else:
                cost = measured["cost"].get("usd_per_million_acked")
                figures = (
                    f"${_num(cost, 3)}/M acked adds (rules: ${d['expected_usd']:.3f}); "
                    f"{_num(ops_per_s(measured), 0)} ops/s (median of rounds); "
                    f"{verdict_line(measured)}"
                )
        why: list[dict[str, Any]] = [{"text": d["reason"]}]
        if d["warning"]:
            why.append(_span(d["warning"], "warn", br=True))
        if d["passed_over"]:
            why.append(_span("passed over: " + "; ".join(d["passed_over"]), "why", br=True))
        rows.append([d["need"], choice, figures, why])
    return _table_of(["you need", "choose", "measured in this run", "why"], rows, "which")


def _scale(results: BenchResults) -> dict[str, Any]:
    """What one counter takes on AWS and why, and the plans at 10,000 and 100,000 adds/s: the
    very lines ``dynamodb-counters advise`` prints (one source)."""
    from ..advise import LIMITS, PLAN_RATES, plan, plan_lines

    pricing = results.get("run", {}).get("pricing", {})
    wru = float(pricing.get("usd_per_million_wru", 0.625))
    plans = []
    for rate in PLAN_RATES:
        head, *steps = plan_lines(plan(rate, wru_price=wru))
        plans.append({"head": head, "steps": [step.lstrip(" -") for step in steps]})
    return {"intro": _scale_intro(results), "limits": list(LIMITS), "plans": plans}


def _scale_intro(results: BenchResults) -> str:
    """What the run measured, against the limits below: DynamoDB Local as it is (none of them),
    the AWS-like mode (a partition's), or DynamoDB itself. It said "DynamoDB Local" always,
    beside a flash sale and a checkout run AWS-like, and for a run against AWS."""
    run = results.get("run", {})
    kind = (run.get("backend") or {}).get("kind")
    faults = (run.get("options") or {}).get("faults") or {}
    if kind == "aws":
        said = "This run measured DynamoDB itself, where these limits hold."
    elif kind != "dynamodb-local":
        said = "This run measured the engine at its --endpoint-url; on AWS these limits hold."
    elif faults.get("aws_like"):
        said = (
            "This run measured DynamoDB Local in the AWS-like mode, which models a partition's "
            "limit."
        )
    else:
        said = "This run measured DynamoDB Local, which has none of these limits."
        aws_like = [
            name
            for name, section in (
                ("flash sale", results.get("flash_sale")),
                ("checkout", results.get("checkout")),
            )
            if section
            and (
                (section.get("model") or {}).get("engine") == "aws-like"
                or (section.get("options") or {}).get("engine") == "aws-like"
            )
        ]
        if aws_like:
            said = said[:-1] + (
                f" (the {' and the '.join(aws_like)} below ran in its AWS-like mode, which models "
                "a partition's)."
            )
    return said


def _metadata(results: BenchResults) -> list[tuple[str, Any]]:
    run = results.get("run", {})
    options = run.get("options", {})
    sdk = options.get("sdk", {})
    app = options.get("app_retry", {})
    faults = options.get("faults", {})
    mix = options.get("mix", {})
    backend = run.get("backend", {})
    versions = run.get("versions", {})
    comparison = results.get("comparison", {})
    ratio = comparison.get("atomic_vs_raw_throughput")
    spread: Mapping[str, object] = comparison.get("atomic_vs_raw_spread") or {}
    if ratio is not None and spread.get("min") is not None:
        ratio_text = (
            f"{ratio:.2f} x throughput (median of {comparison.get('atomic_vs_raw_rounds')} "
            f"rounds, {spread['min']:.2f}-{spread['max']:.2f}; the same faults in each"
            + ("; faults on, so not the 0.95 target" if comparison.get("faults_active") else "")
            + ")"
        )
    else:
        ratio_text = "-" if ratio is None else f"{ratio:.2f} x throughput"
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
            f"{options.get('workers')} {workers_kind(options)}, "
            f"{options.get('ops')} operations each per strategy",
        ),
        ("counter", _bounds_text(options)),
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
        ("atomic / raw boto3", ratio_text),
        ("request units", run.get("units_note", "")),
        ("run time", f"{_num(run.get('seconds'))} s"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]
    return items


def _bounds_text(options: Mapping[str, Any]) -> str:
    """``initial 150, floor 0, no ceiling``: a missing bound said in words, never "None"."""
    parts = [f"initial {options.get('initial')}"]
    for bound in ("floor", "ceiling"):
        value = options.get(bound)
        parts.append(f"no {bound}" if value is None else f"{bound} {value}")
    return ", ".join(parts)


def _flash_caption(per: str) -> tuple[str, str]:
    """The flash sale's caption and reading line, for the model the run used: per item (plain)
    or per partition (AWS-like, where a counter's markers share its partition: marker R/4)."""
    if per == "partition":
        model = (
            "each add(-1) throttled per partition as AWS throttles a hot partition (the "
            "AWS-like mode, R write units/s per partition key, dashed). Accepted adds/s: "
            "acknowledged adds over the time until the stock sold out. One partition takes R "
            "adds/s with atomic (1 write unit each) and R/4 with marker (its transaction writes "
            "the counter item and a marker on the counter's partition, 2 units each); sharded "
            "spreads the counter over n partition keys."
        )
    else:
        model = (
            "each add(-1) throttled per item like AWS throttles a hot partition (the per-item "
            "throughput model, R write units/s per item, dashed). Accepted adds/s: acknowledged "
            "adds over the time until the stock sold out. One item takes R adds/s with atomic "
            "(1 write unit each) and R/2 with marker (its transaction writes the counter item at "
            "2 units); sharded spreads the counter over n items."
        )
    return (
        "Flash sale: one counter with limited stock and a floor of 0, more orders than stock, "
        + model,
        "Read: higher is faster; a sharded line close to the dotted one scales with its shards. "
        "Speed is worth nothing without the columns at the right of the table: false sold out, "
        "oversold and drift must all be 0.",
    )


def _flash(results: BenchResults) -> dict[str, Any] | None:
    """The flash-sale section: its chart and its table (None when it did not run)."""
    flash = results.get("flash_sale")
    if not flash:
        return None
    from markupsafe import Markup

    from .charts import flash_chart

    model = flash.get("model") or {}
    per = "partition" if model.get("per") == "partition" else "item"
    caption, reading = _flash_caption(per)
    rows: list[list[Cell]] = []
    for r in flash.get("targets", []):
        if r.get("skipped"):
            rows.append([r["name"], [_span(r["skipped"], "why")], *(["-"] * 9)])
            continue
        led = r["ledger"]
        bad = [led["false_sold_out"], led["oversold"], led["drift"]]
        cells: list[Cell] = [[_span(_num(v), "drift" if v else "drift0")] for v in bad]
        rows.append(
            [
                r["name"],
                _num(r["accepted_adds_per_s"]),
                _num(r["model_ceiling_adds_per_s"]),
                _num(r["throttled_requests"]),
                *cells,
                _num(r["units"]["wru_per_add"], 2),
                _num(r["usd_per_million_adds"], 3),
                f"{_num(r['acknowledged'])} / {_num(r['refused'])}",
                _num(r["seconds"]),
            ]
        )
    headers = [
        "target",
        "accepted adds/s",
        f"one {per}'s limit",
        "throttled requests",
        "false sold out",
        "oversold",
        "drift",
        "WU / add",
        "$ / M adds",
        "sold / refused",
        "seconds",
    ]
    options = flash.get("options") or {}
    ratio = flash.get("sharded_8_vs_1")
    facts = (
        f"stock {options.get('stock')}, {options.get('orders')} orders, "
        f"{options.get('workers')} worker threads; R = {model.get('item_write_limit')} write "
        f"units/s and {model.get('item_read_limit')} read units/s per {per}"
        + (" (AWS-like engine)" if per == "partition" else "")
        + "; "
        "burst "
        f"{model.get('burst')}. WU / add: every write unit the sale spent (refused orders and "
        "escrow moves included) over the adds sold."
    )
    if flash.get("verdict"):
        facts += f" {flash['verdict']}."
    elif ratio is not None:
        facts += (
            f" sharded@8 sold {ratio:.1f} x the rate of sharded@1 (8 x would be linear in the "
            "shards)."
        )
    return {
        # The chart's SVG is drawn by matplotlib from numbers, its text as paths: markup of ours.
        "chart": Markup(flash_chart(flash)),
        "caption": caption,
        "reading": reading,
        "facts": facts,
        "table": _table_of(headers, rows),
    }


def _api_quota(results: BenchResults) -> dict[str, Any] | None:
    """The api-quota section: a row per window type (None when the scenario did not run)."""
    quota = results.get("api_quota")
    if not quota:
        return None
    rows: list[list[Cell]] = []
    for r in quota["rows"]:
        over = r["windows_over_the_limit"]
        exact = r["stored_equals_granted"]
        errors = sum(r["errors_reaching_clients"].values())
        rows.append(
            [
                r["window"],
                _num(r["hits_per_s"]),
                _num(r["p99_ms"]),
                f"{_num(r['max_granted_in_a_window'])} / {_num(r['limit'])}",
                [_span(_num(over), "drift" if over else "drift0")],
                [_span("yes" if exact else "NO", "drift0" if exact else "drift")],
                _num(r["throttled_requests"]),
                _num(errors) + (f" ({_num(r['hits_given_up'])} given up)" if errors else ""),
                _num(r["write_units_per_hit"], 2),
                _num(r["usd_per_million_hits"], 3),
            ]
        )
    headers = [
        "window",
        "hits/s",
        "p99 ms",
        "most granted in a window / limit",
        "windows over the limit",
        "items hold what was granted",
        "throttled requests",
        "errors reaching clients",
        "WU / hit",
        "$ / M hits",
    ]
    engine = quota["engine"]
    if quota["write_limit_per_partition"] is not None:
        engine += f", {quota['write_limit_per_partition']:g} write units/s per partition"
    facts = (
        f"One quota of {quota['limit']} per {quota['per_s']:g} s, "
        f"{quota['rows'][0]['workers'] if quota['rows'] else 0} clients x "
        f"{quota['ops_per_client']} hits, each with its own request id; engine: {engine}. "
        "A quota's windows are single items under one partition key: on AWS its partition's "
        "write units/s cap its hits/s. A hit that failed is sent again with the same id (up to "
        f"{quota['hit_tries']} tries). WU / hit: every write unit spent (refused hits included) "
        "over the hits answered."
    )
    return {"facts": facts, "table": _table_of(headers, rows)}


def _checkout(results: BenchResults) -> dict[str, Any] | None:
    """The checkout section (holds, SPEC section 13): its verdict and table (None when it did
    not run)."""
    checkout = results.get("checkout")
    if not checkout:
        return None
    rows: list[list[Cell]] = []
    for r in checkout.get("targets", []):
        oversold, false = r["oversold"], r["false_sold_out"]
        drift = r["final_value"] - r["expected_value"]
        rows.append(
            [
                r["target"],
                f"{_num(r['held'])} / {_num(r['refused'])}",
                _num(r["committed"]),
                _num(r["cancelled"]),
                _num(r["abandoned"]),
                [_span(f"{_num(r['returned'])}", "drift0" if r["returned_once"] else "drift")],
                f"{_num(r['final_value'])} = {_num(r['expected_value'])}"
                if not drift
                else [_span(f"{_num(r['final_value'])} != {_num(r['expected_value'])}", "drift")],
                [_span(_num(oversold), "drift" if oversold else "drift0")],
                [_span(_num(false), "drift" if false else "drift0")],
                f"{r['wru_per_cart']:.2f} / {r['rru_per_cart']:.2f}",
                f"{r['usd_per_million_carts']:.2f}",
                f"{_num(r.get('conflicts', 0))} / {_num(r.get('throttled', 0))}",
                _num(r["seconds"]),
            ]
        )
    headers = [
        "target",
        "held / refused",
        "paid",
        "cancelled",
        "abandoned",
        "returned once",
        "final = stock - paid",
        "oversold",
        "false sold out",
        "WU / RU per cart",
        "$ / M carts",
        "conflicts / throttled",
        "seconds",
    ]
    o = checkout.get("options") or {}
    story = (
        f"{o.get('carts')} carts of one unit each against a stock of {o.get('stock')}, from "
        f"{o.get('workers')} threads. Each cart reserves (a hold of {o.get('ttl')} s), then "
        f"pays ({o.get('commit_rate', 0):.0%}), cancels ({o.get('cancel_rate', 0):.0%}) or is "
        "abandoned (the rest): its hold expires and must come back, exactly once, without a "
        "janitor -- a refused reserve reclaims expired holds and tries once more."
    )
    facts = (
        f"Engine: {o.get('engine', 'plain')} (AWS-like: overlapping transactions conflict, a "
        "partition's budget throttles; the library retries what AWS says was not applied). "
        "Returned once: one 'expired' record per abandoned hold, none left live. False sold "
        "out: a refusal while an expired hold could have come back. Cost: the units every "
        "request of the run spent (refused carts included) over the carts, at on-demand prices."
    )
    return {
        "story": story,
        "verdict": checkout.get("verdict", ""),
        "css": "ok" if checkout.get("all_exact") else "bad",
        "facts": facts,
        "table": _table_of(headers, rows),
    }


def _scenario_metadata(results: BenchResults) -> list[tuple[str, Any]]:
    run = results.get("run", {})
    backend = run.get("backend", {})
    sdk = (results.get("flash_sale") or {}).get("options", {}).get("sdk", {})
    items = [
        ("started", run.get("started_at")),
        ("seed", run.get("seed")),
        ("backend", f"{backend.get('kind')} {backend.get('endpoint_url') or ''}"),
        # (The api-quota scenario keeps botocore's defaults: nothing to say.)
        ("retries", f"SDK {sdk.get('mode')} x{sdk.get('max_attempts')}" if sdk else "-"),
        ("run time", f"{_num(run.get('seconds'))} s"),
        ("versions", ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items())),
    ]
    return items


def render_html(results: BenchResults) -> str:
    """The whole report as one HTML document (str), from ``templates/report.html``."""
    from markupsafe import Markup

    from .charts import CHARTS

    title = "dynamodb-counters bench report" + (" (partial)" if results.get("partial") else "")
    page: dict[str, Any] = {
        # The page's own constants: markup, not text to escape.
        "policy": Markup(CONTENT_SECURITY_POLICY),
        "style": Markup(_STYLE),
        "title": title,
        "flash": _flash(results),
        "quota": _api_quota(results),
        "checkout": _checkout(results),
    }
    if not result_rows(results) and (results.get("flash_sale") or results.get("api_quota")):
        # A run of a scenario alone.
        metadata = _scenario_metadata(results)
        return str(_template().render(**page, scenario_only=True, metadata=metadata))
    figures = []
    for key, (chart_title, draw) in CHARTS.items():
        caption, reading = _CAPTIONS[key]
        figures.append(
            {
                "key": key,
                # Drawn by matplotlib from numbers, text as paths: markup of ours.
                "svg": Markup(draw(results)),
                "title": chart_title,
                "caption": caption,
                "reading": reading,
            }
        )
    run = results.get("run", {})
    faults = run.get("options", {}).get("faults", {})
    subtitle = (
        f"{len(results.get('strategies', []))} strategies, "
        f"{faults.get('lost_answer_rate', 0):.0%} lost answers, seed {run.get('seed')}, "
        f"on {run.get('backend', {}).get('kind')}"
    )
    return str(
        _template().render(
            **page,
            scenario_only=False,
            partial=_partial(results),
            subtitle=subtitle,
            cards=_cards(results),
            figures=figures,
            which=_which(results),
            scale=_scale(results),
            tables=_tables(results),
            units_legend=_UNITS_LEGEND,
            metadata=_metadata(results),
        )
    )


def _template() -> Any:
    """The page's template, autoescaping everything it is given (loaded once)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        import jinja2

        environment = jinja2.Environment(
            loader=jinja2.PackageLoader("dynamodb_counters.report", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        _TEMPLATE = environment.get_template("report.html")
    return _TEMPLATE


_TEMPLATE: Any = None


#: The page runs nothing and loads nothing: no script, no frame, no request anywhere; only its
#: own inline styles (and, should a chart ever need one, an inline ``data:`` image). A results
#: file that smuggled markup into a name would still get nothing to run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def _partial(results: BenchResults) -> dict[str, str] | None:
    if not results.get("partial"):
        return None
    run = results.get("run", {})
    unfinished = ", ".join(run.get("unfinished_targets", [])) or "none"
    return {"stopped_by": str(run.get("stopped_by")), "unfinished": unfinished}


def write_report(results: BenchResults, directory: str | Path) -> Path:
    """Write ``index.html`` into ``directory`` (created if needed); returns its path.

    The file is replaced atomically, never written through a symlink (see :mod:`.files`).
    """
    from .files import replace_file

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return replace_file(folder / REPORT_FILE, render_html(results))


def workers_kind(options: dict[str, Any]) -> str:
    """What the workers were: processes, threads, or asyncio tasks (``--async``)."""
    if options.get("processes"):
        return "processes"
    return "asyncio tasks" if options.get("api") == "async" else "threads"
