"""The terminal side of a bench: a progress bar per target while it runs, a table at the end."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ..report import LEGEND, result_rows, verdict_of, workers_kind
from ..report.schema import BenchResults, Counts, Spread
from .options import BenchOptions
from .runner import Connection, run_bench


def run_with_progress(
    options: BenchOptions, *, console: Console | None, connection: Connection | None = None
) -> BenchResults:
    """Run the bench (on ``connection`` when one is open); with a console, show one progress
    bar per target."""
    if console is None:
        return run_bench(options, connection=connection)
    progress = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks = [progress.add_task(name, total=options.total_ops) for name in options.targets]
    lock = threading.Lock()
    # Ticks arrive per operation from every worker: batch them, rich redraws on its own clock.
    pending = [0] * len(tasks)

    def advance(index: int, n: int) -> None:
        with lock:
            pending[index] += n
            if pending[index] >= 8 or pending[index] + _completed(progress, tasks[index]) >= (
                options.total_ops
            ):
                progress.advance(tasks[index], pending[index])
                pending[index] = 0

    with progress:
        results = run_bench(options, advance=advance, connection=connection)
        for index, task in enumerate(tasks):
            progress.update(task, completed=options.total_ops)
            pending[index] = 0
    return results


def _completed(progress: Progress, task: Any) -> float:
    return float(progress.tasks[task].completed) if task < len(progress.tasks) else 0.0


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _spread(figure: Spread | None, digits: int = 0) -> str:
    """``median (min-max)`` of a figure over rounds."""
    if not figure or figure.get("median") is None:
        return "-"
    median = _fmt(figure["median"], digits)
    if figure["min"] == figure["max"]:
        return median
    return f"{median} ({_fmt(figure['min'], digits)}-{_fmt(figure['max'], digits)})"


def _dup(counts: Counts) -> str:
    # applied=None: the strategy could not tell a duplicate from a first add; "0" would lie.
    return "?" if counts.get("unknown") else str(counts["duplicates"])


_STYLES = {"exact": "green", "drifted": "bold red", "oversold": "bold red", "unenforced": "red"}


def results_table(results: BenchResults) -> Table:
    """The end-of-run table, one row per strategy (and the raw baseline); fits 100 columns."""
    run = results["run"]
    options = run["options"]
    faults = options["faults"]
    rates = [
        f"{label} {faults[key]:.0%}"
        for key, label in [
            ("lost_answer_rate", "lost answers"),
            ("throttle_rate", "throttles"),
            ("conflict_rate", "conflicts"),
        ]
        if faults[key]
    ]
    if faults.get("aws_like"):
        rates.append("AWS-like engine")
    title = (
        f"{options['workers']} {workers_kind(options)} x "
        f"{options['ops']} ops in {options.get('rounds', 1)} rounds; "
        f"faults: {', '.join(rates) or 'none'}; seed {run['seed']}; {run['backend']['kind']}"
    )
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    for header, justify in [
        ("strategy", "left"),
        ("idem", "center"),
        ("acked", "right"),
        ("rej", "right"),
        ("err", "right"),
        ("dup", "right"),
        ("final", "right"),
        ("drift", "right"),
        ("ops/s", "right"),
        ("p99 ms", "right"),
        ("req/op", "right"),
        ("$/M ack", "right"),
    ]:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in result_rows(results):
        counts, ledger = row["counts"], row["ledger"]
        drift = ledger["drift"]
        drift_text = "[green]0[/]" if drift == 0 else f"[bold red]{drift:+d}[/]"
        cost = row["cost"].get("usd_per_million_acked", row["cost"]["usd_per_million_ops"])
        table.add_row(
            row["name"] + ("*" if row["baseline"] else ""),
            "yes" if row["capabilities"]["idempotent"] else "no",
            str(counts["acknowledged"]),
            str(counts["rejected"]),
            str(counts["errors"]),
            _dup(counts),
            str(ledger["final"]),
            drift_text,
            _spread(row["throughput"].get("ops_per_s_spread"))
            if row["throughput"].get("rounds", 0) > 1
            else _fmt(row["throughput"]["ops_per_s"], 0),
            _fmt(row["latency_ms"]["p99"], 0),
            _fmt(row["requests"]["per_op"], 2),
            _fmt(cost, 2),
        )
    return table


def verdict_block(results: BenchResults) -> Group:
    """One verdict per strategy (wrapped under itself, ids never cut), then the legend."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for row in result_rows(results):
        verdict = verdict_of(row)
        text = Text(verdict["text"], style=_STYLES.get(verdict["kind"], ""))
        if verdict["notes"]:
            text.append(" (" + "; ".join(verdict["notes"]) + ")", style="dim")
        grid.add_row("  " + row["name"] + ("*" if row["baseline"] else ""), text)
    parts: list[Any] = [Text("Verdict", style="bold"), grid]
    if results.get("baseline"):
        parts.append(
            Text("  * plain boto3 update_item doing the same work (not a strategy)", style="dim")
        )
    parts.append(Text("Legend: " + LEGEND, style="dim"))
    return Group(*parts)


def comparison_line(results: BenchResults) -> str | None:
    comparison = results.get("comparison", {})
    ratio = comparison.get("atomic_vs_raw_throughput")
    if ratio is None:
        return None
    spread: Mapping[str, object] = comparison.get("atomic_vs_raw_spread") or {}
    rounds = comparison.get("atomic_vs_raw_rounds", 0)
    line = f"atomic throughput = {ratio:.2f} x plain boto3 update_item"
    if rounds > 1 and spread.get("min") is not None:
        line += (
            f" (median of {rounds} rounds, {spread['min']:.2f}-{spread['max']:.2f}, "
            f"same faults in each)"
        )
    if comparison.get("faults_active"):
        line += (
            "; with faults injected, so not the >= 0.95 target, which is for runs without faults"
        )
    else:
        line += "; target >= 0.95"
    return line


def flash_table(flash: dict[str, Any]) -> Table:
    """The flash-sale scenario's figures, one row per target (skipped targets say why)."""
    model = flash.get("model", {})
    limit = model.get("item_write_limit")
    per = model.get("per", "item")
    title = "Flash sale" + (" (AWS-like)" if model.get("engine") == "aws-like" else "") + ": "
    title += f"per-{per} limit {limit:g} write units/s" if limit else f"per-{per} limit off"
    if model.get("partitions"):
        title += f", keys on {model['partitions']} partitions"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("target", justify="left", no_wrap=True)
    for header in ("adds/s", "throttles", "conflicts", "errors", "false s/o", "oversold"):
        table.add_column(header, justify="right")
    for header in ("drift", "WU/add", "$/M"):
        table.add_column(header, justify="right")
    skipped = [row for row in flash.get("targets", []) if row.get("skipped")]
    for row in flash.get("targets", []):
        if row.get("skipped"):
            continue
        ledger = row["ledger"]
        # Errors that reached a worker: final ones and those the worker had to send again.
        errors = row["errors"] + row.get("retryable_errors_reaching_workers", 0)
        bad = [ledger[k] for k in ("false_sold_out", "oversold", "drift")]
        cells = [
            Text(f"{v:+d}" if k == 2 else str(v), style="bold red" if v else "green")
            for k, v in enumerate(bad)
        ]
        table.add_row(
            str(row["name"]),
            _fmt(row["accepted_adds_per_s"]),
            str(row["throttled_requests"]),
            str(row.get("conflicts", 0)),
            Text(str(errors), style="bold red" if errors else "green"),
            *cells,
            _fmt(row["units"]["wru_per_add"], 2),
            _fmt(row["usd_per_million_adds"], 2),
        )
    notes = []
    ratio = flash.get("sharded_8_vs_1")
    if flash.get("verdict"):
        notes.append(str(flash["verdict"]))
    elif ratio is not None:
        # A result, not a verdict: the rate 8 shards took over 1 (8 x would be linear).
        notes.append(f"sharded@8 sold {ratio:.1f} x the rate of sharded@1 (8 x would be linear)")
    notes.append(
        "errors: what reached a worker (final errors, and conflicts or cancelled transactions "
        "the library gave up on); false s/o: refusals while stock remained; $/M: $ per million "
        "adds"
    )
    for row in flash.get("targets", []):
        # What the columns above cannot show: orders never answered, or found counted before
        # their re-send (the flash sale's "exact" counts both).
        why = []
        if row.get("unanswered_orders"):
            unanswered = row["unanswered_orders"]
            why.append(f"{unanswered} orders never answered: stopped by the time limit")
        if row.get("landed_before_re_send"):
            why.append(f"{row['landed_before_re_send']} orders counted before their re-send")
        if why and not row.get("skipped"):
            notes.append(f"NOT exact: {row['name']} ({'; '.join(why)})")
    if skipped:
        names = ", ".join(str(row["name"]) for row in skipped)
        notes.append(f"skipped: {names} ({skipped[0]['skipped']})")
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table


def terminal_text(results: BenchResults, *, width: int = 100) -> str:
    """What a bench prints at its end, as plain text ``width`` columns wide (the README's sample
    output is written from this, by ``make readme-figures``)."""
    import io

    console = Console(
        file=io.StringIO(), width=width, record=True, color_system=None, force_terminal=False
    )
    if results.get("strategies") or results.get("baseline"):
        console.print(results_table(results))
        line = comparison_line(results)
        if line:
            console.print(line)
        console.print(verdict_block(results))
    flash = results.get("flash_sale")
    if flash:
        console.print(flash_table(flash))
    if results.get("checkout"):
        from .checkout import render

        console.print(render(results["checkout"]), markup=False, highlight=False)
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"
