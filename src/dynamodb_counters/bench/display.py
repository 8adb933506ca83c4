"""The terminal side of a bench: a progress bar per target while it runs, a table at the end."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..report import result_rows
from .options import BenchOptions
from .runner import run_bench


def run_with_progress(options: BenchOptions, *, console: Console | None) -> dict[str, Any]:
    """Run the bench; with a console, show one progress bar per target."""
    if console is None:
        return run_bench(options)
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
        results = run_bench(options, advance=advance)
        for index, task in enumerate(tasks):
            progress.update(task, completed=options.total_ops)
            pending[index] = 0
    return results


def _completed(progress: Progress, task: Any) -> float:
    return float(progress.tasks[task].completed) if task < len(progress.tasks) else 0.0


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def results_table(results: dict[str, Any]) -> Table:
    """The end-of-run table: one row per strategy (and the raw baseline)."""
    run = results["run"]
    faults = run["options"]["faults"]
    title = (
        f"dynamodb-counters bench -- {run['options']['workers']} "
        f"{'processes' if run['options']['processes'] else 'threads'}, "
        f"lost answers {faults['lost_answer_rate']:.0%}, throttles {faults['throttle_rate']:.0%}, "
        f"conflicts {faults['conflict_rate']:.0%}, seed {run['seed']}, {run['backend']['kind']}"
    )
    table = Table(title=title, title_justify="left")
    for header, justify in [
        ("strategy", "left"),
        ("idem.", "center"),
        ("acked", "right"),
        ("dup", "right"),
        ("rejected", "right"),
        ("errors", "right"),
        ("expected", "right"),
        ("final", "right"),
        ("drift", "right"),
        ("floor ok", "center"),
        ("ops/s", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("req/op", "right"),
        ("WRU/op", "right"),
        ("RRU/op", "right"),
        ("$/M ops", "right"),
    ]:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    rows = result_rows(results)
    for row in rows:
        counts, ledger, latency = row["counts"], row["ledger"], row["latency_ms"]
        drift = ledger["drift"]
        drift_text = "[green]0[/]" if drift == 0 else f"[bold red]{drift:+d}[/]"
        if not ledger["thresholds_enforced"]:
            bound = "n/a"
        elif ledger["floor_crossed"] or ledger["ceiling_crossed"]:
            bound = "[bold red]CROSSED[/]"
        else:
            bound = "[green]yes[/]"
        units = row["units"]["estimated"]
        table.add_row(
            row["name"] + (" (baseline)" if row["baseline"] else ""),
            "yes" if row["capabilities"]["idempotent"] else "no",
            str(counts["acknowledged"]),
            str(counts["duplicates"]),
            str(counts["rejected"]),
            str(counts["errors"]),
            str(ledger["expected"]),
            str(ledger["final"]),
            drift_text,
            bound,
            _fmt(row["throughput"]["ops_per_s"], 0),
            _fmt(latency["p50"]),
            _fmt(latency["p99"]),
            _fmt(row["requests"]["per_op"], 2),
            _fmt(units["wru_per_op"], 2),
            _fmt(units["rru_per_op"], 2),
            _fmt(row["cost"]["usd_per_million_ops"], 3),
        )
    return table


def comparison_line(results: dict[str, Any]) -> str | None:
    ratio = results.get("comparison", {}).get("atomic_vs_raw_throughput")
    if ratio is None:
        return None
    return (
        f"atomic throughput = {ratio:.2f} x plain boto3 update_item (target >= 0.95 without faults)"
    )
