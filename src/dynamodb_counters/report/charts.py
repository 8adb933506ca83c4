"""The report's charts, drawn with matplotlib (Agg) as inline SVG strings.

Each function takes the bench's results dict and returns one ``<svg>`` element whose ids are
prefixed, so several charts can live in one HTML document. Text is drawn as paths: the SVG needs
no font and no network.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from . import result_rows

EXACT = "#2e7d32"
DRIFT = "#c62828"
NEUTRAL = "#1565c0"
BASELINE = "#9e9e9e"
MUTED = "#616161"

_ID = re.compile(r'\bid="([^"]+)"')


def _label(row: dict[str, Any]) -> str:
    return "raw boto3" if row.get("baseline") else str(row["name"])


def _svg(fig: Any, prefix: str) -> str:
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "path", "svg.hashsalt": prefix}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # The RDF metadata block names remote vocabularies; a page that fetches nothing needs none.
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    ids = set(_ID.findall(text))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{prefix}-{old}"
        text = text.replace(f'id="{old}"', f'id="{new}"')
        text = text.replace(f"#{old})", f"#{new})").replace(f'#{old}"', f'#{new}"')
    return text.replace("<svg ", f'<svg class="chart" data-chart="{prefix}" ', 1)


def _figure(rows: int) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * max(rows, 3) + 1.2), dpi=100)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def drift_chart(results: dict[str, Any]) -> str:
    """Final value minus the ledger's expected value, per strategy: 0 is exact."""
    rows = result_rows(results)
    names = [_label(r) for r in rows]
    drifts = [int(r["ledger"]["drift"]) for r in rows]
    fig, ax = _figure(len(rows))
    colours = [EXACT if d == 0 else DRIFT for d in drifts]
    ax.barh(names, drifts, color=colours)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    span = max([abs(d) for d in drifts] + [1])
    ax.set_xlim(-span * 1.35, span * 1.35)
    for y, d in enumerate(drifts):
        text = "exact" if d == 0 else f"{d:+d}"
        ax.text(
            d + (span * 0.04 if d >= 0 else -span * 0.04),
            y,
            text,
            va="center",
            ha="left" if d >= 0 else "right",
            color=EXACT if d == 0 else DRIFT,
            fontweight="bold",
        )
    ax.set_xlabel("drift = final value - expected (from the ledger of acknowledged requests)")
    ax.set_title("Drift under faults: who stays exact")
    return _svg(fig, "drift")


def throughput_chart(results: dict[str, Any]) -> str:
    rows = result_rows(results)
    names = [_label(r) for r in rows]
    values = [float(r["throughput"]["ops_per_s"]) for r in rows]
    fig, ax = _figure(len(rows))
    colours = [BASELINE if r.get("baseline") else NEUTRAL for r in rows]
    ax.barh(names, values, color=colours)
    ax.invert_yaxis()
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center")
    ax.set_xlim(0, max([*values, 1.0]) * 1.2)
    ax.set_xlabel("operations per second (add() calls, all workers)")
    ax.set_title("Throughput")
    return _svg(fig, "throughput")


def latency_chart(results: dict[str, Any]) -> str:
    rows = result_rows(results)
    names = [_label(r) for r in rows]
    fig, ax = _figure(len(rows) * 2)
    height = 0.27
    for offset, (key, colour) in enumerate(
        [("p50", "#90caf9"), ("p95", "#1e88e5"), ("p99", "#0d47a1")]
    ):
        values = [float(r["latency_ms"][key] or 0) for r in rows]
        positions = [i + (offset - 1) * height for i in range(len(rows))]
        ax.barh(positions, values, height=height, color=colour, label=key)
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    ax.legend(loc="lower right", frameon=False)
    ax.set_xlabel("latency of one add(), milliseconds (retries included)")
    ax.set_title("Latency p50 / p95 / p99")
    return _svg(fig, "latency")


def cost_chart(results: dict[str, Any]) -> str:
    rows = result_rows(results, baseline=False)
    pricing = results["run"]["pricing"]
    # The prices the run was costed at (results["run"]["pricing"]), so the bars add up to it.
    wru_price = float(pricing["usd_per_million_wru"])
    rru_price = float(pricing["usd_per_million_rru"])
    names = [_label(r) for r in rows]
    writes = [float(r["units"]["estimated"]["wru_per_op"]) * wru_price for r in rows]
    reads = [float(r["units"]["estimated"]["rru_per_op"]) * rru_price for r in rows]
    fig, ax = _figure(len(rows))
    ax.barh(names, writes, color="#ef6c00", label="write units")
    ax.barh(names, reads, left=writes, color="#ffb74d", label="read units")
    ax.invert_yaxis()
    totals = [w + r for w, r in zip(writes, reads, strict=True)]
    for y, total in enumerate(totals):
        ax.text(total, y, f" \\${total:.2f}", va="center")
    ax.set_xlim(0, max([*totals, 0.01]) * 1.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    ax.set_xlabel(
        f"USD per million add() calls, on-demand (\\${wru_price}/M WRU, \\${rru_price}/M RRU)"
    )
    ax.set_title("What exactness costs")
    return _svg(fig, "cost")


_MINUTE, _HOUR, _DAY, _YEAR = 60.0, 3600.0, 86400.0, 365 * 86400.0


def _window_seconds(row: dict[str, Any]) -> tuple[float, str]:
    """A bar length (seconds) and its label for a strategy's idempotency window."""
    numbers = row["capabilities"].get("window_numbers", {})
    kind = numbers.get("kind")
    rate = float(row["throughput"]["ops_per_s"] or 0)
    if kind == "none":
        return 0.0, "none: a retry counts again"
    if kind == "time":
        seconds = float(numbers["seconds"])
        if seconds >= _DAY:
            return seconds, f"{seconds / _DAY:g} days"
        if seconds >= _HOUR:
            return seconds, f"{seconds / _HOUR:g} hours"
        return seconds, f"{seconds / _MINUTE:g} minutes"
    if kind == "forever":
        return 10 * _YEAR, "forever"
    if kind == "ids":
        ids = int(numbers["ids"])
        seconds = ids / rate if rate else 1.0
        what = "refuses new ids when full" if numbers.get("refuses_when_full") else "oldest drop"
        return seconds, f"last {ids} ids (~{seconds:,.1f} s here; {what})"
    return 0.0, str(row["capabilities"].get("window", "?"))


def window_chart(results: dict[str, Any]) -> str:
    rows = result_rows(results, baseline=False)
    names = [_label(r) for r in rows]
    spans = [_window_seconds(r) for r in rows]
    fig, ax = _figure(len(rows))
    floor = 0.1
    values = [max(s, floor) if s else floor for s, _ in spans]
    colours = [MUTED if s == 0 else EXACT for s, _ in spans]
    ax.barh(names, values, color=colours, left=0)
    ax.set_xscale("log")
    ax.set_xlim(floor, 3000 * _YEAR)
    ax.invert_yaxis()
    ticks = [1, _MINUTE, _HOUR, _DAY, 30 * _DAY, _YEAR]
    ax.set_xticks(ticks, ["1 s", "1 min", "1 h", "1 day", "30 days", "1 year"])
    for y, (value, (_seconds, label)) in enumerate(zip(values, spans, strict=True)):
        ax.text(value * 1.15, y, label, va="center", fontsize=9)
    ax.set_xlabel("how long a replayed request id is still recognised (log scale)")
    ax.set_title("Idempotency window")
    return _svg(fig, "window")


CHARTS = {
    "drift": ("Drift per strategy", drift_chart),
    "throughput": ("Throughput", throughput_chart),
    "latency": ("Latency", latency_chart),
    "cost": ("Cost per million operations", cost_chart),
    "window": ("Idempotency window", window_chart),
}
