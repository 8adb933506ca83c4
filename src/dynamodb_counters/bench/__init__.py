"""The bench: measure what each strategy really does under concurrency and faults.

``run_bench(BenchOptions(...))`` returns a results document
(:class:`~dynamodb_counters.report.schema.BenchResults`: schema
``dynamodb-counters/bench-results``, version 1): run metadata (seed, options, backend, package
versions, prices) and, per strategy,
counts (attempted, acknowledged, duplicates, rejected, errors, adds of unknown outcome), the
ledger (expected, final, drift, the bounds asked for and whether they held, double counts per
side), throughput and latency with their spread over rounds, HTTP requests per op, request
units (estimated by DynamoDB's pricing rules, and as the backend reported them, with what the
reported figures leave out), cost per acknowledged add, per refused add and per attempt, the
cost of one ``value()`` read, and a verdict. The CLI (``dynamodb-counters bench`` / ``demo``)
lives in :mod:`.cli`.

A run that stops early raises :class:`BenchFailed` (an error) or :class:`BenchInterrupted`
(Ctrl-C; a ``KeyboardInterrupt``); both carry ``results``: the targets that finished, with
``"partial": true``.
"""

from __future__ import annotations

from ..report.schema import SCHEMA, SCHEMA_VERSION
from .options import RAW, Backend, BenchOptions, Pricing, SdkRetry
from .runner import BenchFailed, BenchInterrupted, run_bench
from .workload import AppRetry, Mix

__all__ = [
    "RAW",
    "SCHEMA",
    "SCHEMA_VERSION",
    "AppRetry",
    "Backend",
    "BenchFailed",
    "BenchInterrupted",
    "BenchOptions",
    "Mix",
    "Pricing",
    "SdkRetry",
    "run_bench",
]
