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
from matplotlib.ticker import FuncFormatter

from . import ops_per_s, result_rows
from .schema import BenchResults, TargetResult
from .verdict import verdict_of

EXACT = "#2e7d32"
DRIFT = "#c62828"
NEUTRAL = "#1565c0"
BASELINE = "#9e9e9e"
MUTED = "#616161"

_ID = re.compile(r'\bid="([^"]+)"')


def _label(row: TargetResult) -> str:
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


def drift_chart(results: BenchResults) -> str:
    """Final value minus the ledger's expected value, per strategy: 0 is exact."""
    rows = result_rows(results)
    names = [_label(r) for r in rows]
    drifts = [int(r["ledger"]["drift"]) for r in rows]
    # A drift of 0 is "exact" only where nothing else went wrong: a bound the strategy could
    # not enforce and that was crossed is said beside its bar, in red, never drawn as exact.
    verdicts = [verdict_of(r) for r in rows]
    fig, ax = _figure(len(rows))
    colours = [EXACT if d == 0 else DRIFT for d in drifts]
    ax.barh(names, drifts, color=colours)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    span = max([abs(d) for d in drifts] + [1])
    ax.set_xlim(-span * 1.35, span * 1.35)
    for y, d in enumerate(drifts):
        verdict = verdicts[y]
        bad = verdict["kind"] in ("oversold", "unenforced")
        text = f"{d:+d}" if d else ("0, but " + str(verdict["text"]) if bad else "exact")
        ax.text(
            d + (span * 0.04 if d >= 0 else -span * 0.04),
            y,
            text,
            va="center",
            ha="left" if d >= 0 else "right",
            color=DRIFT if d or bad else EXACT,
            fontweight="bold",
            fontsize=9 if bad else None,
        )
    ax.set_xlabel("drift = final value - expected (from the ledger of acknowledged requests)")
    ax.set_title("Drift under faults: who stays exact")
    return _svg(fig, "drift")


def throughput_chart(results: BenchResults) -> str:
    """Median ops/s over rounds, a whisker from the slowest to the fastest round."""
    rows = result_rows(results)
    names = [_label(r) for r in rows]
    medians, lows, highs = [], [], []
    for r in rows:
        spread = r["throughput"].get("ops_per_s_spread") or {}
        median = ops_per_s(r)  # the figure every table of the report quotes too
        medians.append(median)
        lows.append(median - float(spread.get("min") or median))
        highs.append(float(spread.get("max") or median) - median)
    fig, ax = _figure(len(rows))
    colours = [BASELINE if r.get("baseline") else NEUTRAL for r in rows]
    ax.barh(names, medians, color=colours, xerr=[lows, highs], ecolor="black", capsize=3)
    ax.invert_yaxis()
    top = max([m + h for m, h in zip(medians, highs, strict=True)] + [1.0])
    for y, v in enumerate(medians):
        ax.text(v + highs[y] + top * 0.01, y, f" {v:,.0f}", va="center")
    ax.set_xlim(0, top * 1.2)
    rounds = max([int(r["throughput"].get("rounds", 1)) for r in rows] + [1])
    ax.set_xlabel(
        f"add() calls per second, all workers (median of {rounds} rounds; whisker: min-max)"
    )
    ax.set_title("Throughput")
    return _svg(fig, "throughput")


def _latencies(row: TargetResult) -> dict[str, float | None]:
    latency = row["latency_ms"]
    return {"p50": latency["p50"], "p95": latency["p95"], "p99": latency["p99"]}


def latency_chart(results: BenchResults) -> str:
    """p50, p95 and p99 per strategy on a log scale: a p50 of a few ms stays visible beside a
    p99 of a second, and each bar says its value."""
    rows = result_rows(results)
    names = [_label(r) for r in rows]
    fig, ax = _figure(len(rows) * 2)
    height = 0.27
    series = [("p50", "#64b5f6"), ("p95", "#1e88e5"), ("p99", "#0d47a1")]
    every = [float(_latencies(r)[key] or 0) for r in rows for key, _ in series]
    positive = [v for v in every if v > 0] or [1.0]
    low, high = min(positive) / 2, max(positive) * 4
    for offset, (key, colour) in enumerate(series):
        values = [float(_latencies(r)[key] or 0) for r in rows]
        positions = [i + (offset - 1) * height for i in range(len(rows))]
        # Bars start at the axis' left end (a log scale has no 0).
        ax.barh(
            positions,
            [max(v, low) - low for v in values],
            left=low,
            height=height,
            color=colour,
            label=key,
        )
        for y, v in zip(positions, values, strict=True):
            if v > 0:
                ax.text(
                    v * 1.05, y, f"{v:,.0f}" if v >= 10 else f"{v:.1f}", va="center", fontsize=7
                )
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}" if x >= 1 else f"{x:g}"))
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8)
    ax.set_xlabel("latency of one add(), milliseconds (retries included; log scale)")
    ax.set_title("Latency p50 / p95 / p99", pad=24)
    return _svg(fig, "latency")


def cost_chart(results: BenchResults) -> str:
    """USD per million acknowledged adds (writes and reads), refused adds apart."""
    rows = result_rows(results, baseline=False)
    pricing = results["run"]["pricing"]
    # The prices the run was costed at (results["run"]["pricing"]), so the bars add up to it.
    wru_price = float(pricing["usd_per_million_wru"])
    rru_price = float(pricing["usd_per_million_rru"])
    names = [_label(r) for r in rows]
    writes, reads, refused = [], [], []
    for r in rows:
        acked = (r["units"].get("by_outcome") or {}).get("acked")
        if acked and acked["ops"]:
            writes.append(acked["wru"] / acked["ops"] * wru_price)
            reads.append(acked["rru"] / acked["ops"] * rru_price)
        else:  # results from before per-outcome books: per attempt
            writes.append(float(r["units"]["estimated"]["wru_per_op"]) * wru_price)
            reads.append(float(r["units"]["estimated"]["rru_per_op"]) * rru_price)
        refused.append(r["cost"].get("usd_per_million_rejected"))
    fig, ax = _figure(len(rows) * 2)
    height = 0.4
    positions = list(range(len(rows)))
    ax.barh(positions, writes, height=height, color="#ef6c00", label="acked add: write units")
    ax.barh(
        positions, reads, height=height, left=writes, color="#ffb74d", label="acked add: read units"
    )
    refused_at = [p + height for p in positions]
    ax.barh(
        refused_at,
        [x or 0 for x in refused],
        height=height * 0.8,
        color="white",
        edgecolor="#8d6e63",
        hatch="///",
        label="refused add (by the floor)",
    )
    ax.set_yticks([p + height / 2 for p in positions], names)
    ax.invert_yaxis()
    totals = [w + r for w, r in zip(writes, reads, strict=True)]
    top = max([*totals, *(x or 0 for x in refused), 0.01])
    for y, total in enumerate(totals):
        ax.text(total, y, f" \\${total:.2f}", va="center")
        if refused[y]:
            ax.text(refused[y], y + height, f" \\${refused[y]:.2f}", va="center", fontsize=8)
        read = rows[y].get("value_read") or {}
        if rows[y]["name"] == "collection" and read:
            ax.text(
                top * 1.33,
                y + height / 2,
                f"+ value(): {read.get('rru', 0):g} RRU per read\n"
                f"(\\${read.get('usd_per_million_reads', 0):.2f}/M reads) at "
                f"{read.get('items_in_partition', 0):,} items",
                va="center",
                ha="right",
                fontsize=8,
                color=MUTED,
            )
    ax.set_xlim(0, top * 1.35)
    # Above the bars, under the title: below the axis it was drawn over the axis label.
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8)
    ax.set_xlabel(f"USD per million adds, on-demand (\\${wru_price}/M WRU, \\${rru_price}/M RRU)")
    ax.set_title("What exactness costs, per acknowledged add", pad=24)
    return _svg(fig, "cost")


_MINUTE, _HOUR, _DAY, _YEAR = 60.0, 3600.0, 86400.0, 365 * 86400.0


def _window_numbers(row: TargetResult) -> dict[str, Any]:
    """The window in numbers; results written before ``sharded``'s window had numbers say
    ``unknown``: its marker's TTL (the run's option, or the default 7 days)."""
    capabilities = row["capabilities"]
    numbers = dict(capabilities.get("window_numbers") or {})
    if numbers.get("kind", "unknown") == "unknown" and "marker" in str(capabilities["window"]):
        ttl = (capabilities.get("options") or {}).get("marker_ttl") or 7 * _DAY
        return {"kind": "time", "seconds": float(ttl)}
    return numbers


def _window_seconds(row: TargetResult) -> tuple[float | None, str]:
    """A bar length (seconds; None: no limit) and its label for a strategy's window."""
    numbers = _window_numbers(row)
    kind = numbers.get("kind")
    # Only applied adds push an id out of a count-based window (refused ones never enter it).
    rate = float(row["throughput"].get("applied_per_s") or row["throughput"]["ops_per_s"] or 0)
    if kind == "none":
        return 0.0, "none: a retry counts again"
    if kind == "time":
        seconds = float(numbers["seconds"])
        for size, unit in ((_DAY, "days"), (_HOUR, "hours"), (_MINUTE, "minutes")):
            if seconds >= size:
                return seconds, f"{seconds / size:g} {unit}"
        return seconds, f"{seconds:g} s"
    if kind == "forever":
        return None, "no time limit: until compact() folds the delta"
    if kind == "ids":
        ids = int(numbers["ids"])
        most = int(numbers.get("up_to") or ids)
        seconds = ids / rate if rate else 1.0
        count = f"last {ids:,} ids" if most == ids else f"last {ids:,} to {most:,} ids"
        what = "; then refuses new ids" if numbers.get("refuses_when_full") else ""
        return seconds, f"{count} (~{seconds:,.1f} s at this run's applied rate{what})"
    return 0.0, str(row["capabilities"].get("window", "?"))


def window_chart(results: BenchResults) -> str:
    rows = result_rows(results, baseline=False)
    names = [_label(r) for r in rows]
    spans = [_window_seconds(r) for r in rows]
    fig, ax = _figure(len(rows))
    floor, end = 0.1, 30 * _YEAR
    values = [end if s is None else max(s, floor) for s, _ in spans]
    colours = [MUTED if s == 0 else EXACT for s, _ in spans]
    ax.barh(names, values, color=colours, left=0)
    for y, (seconds, _label_text) in enumerate(spans):
        if seconds is None:  # no limit: an arrow off the end of the axis, not a made-up length
            ax.annotate(
                "",
                xy=(end * 3, y),
                xytext=(end * 0.2, y),
                arrowprops={"arrowstyle": "->", "color": EXACT, "lw": 2},
                annotation_clip=False,
            )
    ax.set_xscale("log")
    ax.set_xlim(floor, end)
    ax.invert_yaxis()
    ticks = [1, _MINUTE, _HOUR, _DAY, 30 * _DAY, _YEAR]
    ax.set_xticks(ticks, ["1 s", "1 min", "1 h", "1 day", "30 days", "1 year"])
    for y, (value, (seconds, label)) in enumerate(zip(values, spans, strict=True)):
        x = 0.15 if seconds is None else value * 1.15
        colour = "white" if seconds is None else "black"
        ax.text(x, y, label, va="center", fontsize=9, color=colour)
    ax.set_xlabel("how long a replayed request id is still recognised (seconds, log scale)")
    ax.set_title("Idempotency window")
    return _svg(fig, "window")


CHARTS = {
    "drift": ("Drift per strategy", drift_chart),
    "throughput": ("Throughput", throughput_chart),
    "latency": ("Latency", latency_chart),
    "cost": ("Cost per million operations", cost_chart),
    "window": ("Idempotency window", window_chart),
}


def flash_chart(flash: dict[str, Any]) -> str:
    """The flash sale: accepted adds/s against shard count, and the single-item strategies
    (``atomic``, ``marker``) beside it; the limit R of one item (or, AWS-like, of one partition
    key) drawn as a line."""
    rows = [r for r in flash.get("targets", []) if not r.get("skipped")]
    per = "partition" if (flash.get("model") or {}).get("per") == "partition" else "item"
    unit = "partition key" if per == "partition" else "item"
    sharded = sorted((r for r in rows if r.get("shards")), key=lambda r: int(r["shards"]))
    single = [r for r in rows if not r.get("shards")]
    limit = (flash.get("model") or {}).get("item_write_limit")
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(7.5, 3.6), dpi=100, gridspec_kw={"width_ratios": [3, 2]}, sharey=True
    )
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    if sharded:
        shards = [int(r["shards"]) for r in sharded]
        rates = [float(r["accepted_adds_per_s"]) for r in sharded]
        left.plot(shards, rates, marker="o", color=NEUTRAL, label="sharded, measured")
        if rates[0] and shards[0] == 1:
            left.plot(
                shards,
                [rates[0] * n for n in shards],
                linestyle=":",
                color=MUTED,
                label="n x sharded@1",
            )
        for n, v in zip(shards, rates, strict=True):
            left.annotate(
                f"{v:,.1f}",  # as the bars beside it and the table: 7.5, not 7
                (n, v),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=9,
            )
        left.set_xscale("log", base=2)
        left.set_xticks(shards, [str(n) for n in shards])
        left.legend(loc="upper left", fontsize=8, frameon=False)
    else:
        skipped = [r for r in flash.get("targets", []) if r.get("skipped")]
        note = "sharded: not in this build" if skipped else "sharded: not run"
        left.text(0.5, 0.5, note, ha="center", va="center", color=MUTED, transform=left.transAxes)
        left.set_xticks([])
    left.set_xlabel("shards")
    left.set_ylabel("accepted adds/s")
    left.set_title(f"sharded: one counter, n {unit}s")
    names = [str(r["name"]) for r in single]
    values = [float(r["accepted_adds_per_s"]) for r in single]
    right.bar(names, values, color=NEUTRAL)
    for x, v in enumerate(values):
        right.text(x, v, f"{v:,.1f}", ha="center", va="bottom", fontsize=9)
    right.set_title(f"one {unit}")
    if limit:
        # One item's limit: the single-item strategies' ceiling (sharded has n items).
        right.axhline(float(limit), color=DRIFT, linestyle="--", linewidth=0.8)
        right.text(
            len(values) - 0.5 if values else 0.5,
            float(limit),
            f" R = {limit:g} WU/s per {per}",
            color=DRIFT,
            fontsize=8,
            va="bottom",
            ha="right",
        )
    top = max(values + [float(r["accepted_adds_per_s"]) for r in sharded] + [float(limit or 1)])
    left.set_ylim(0, top * 1.25)
    return _svg(fig, "flash")
