"""The report's "Which strategy?": :mod:`dynamodb_counters.advise`'s rules, checked against the run.

Each row is a typical need. The rules rank the strategies that meet it (cheapest first, by the
pricing rules); the run then vetoes any that did not keep its promise here: a strategy that
crossed a bound is never offered where a bound is needed, one that drifted never where a retry
must be recognised. The row shows what the chosen one measured (cost per acknowledged add,
throughput, verdict) and who was passed over, and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..advise import TOKEN_WINDOW_S, Needs, candidates
from .schema import BenchResults, TargetResult
from .verdict import verdict_of


@dataclass(frozen=True, slots=True)
class Need:
    label: str
    needs: Needs


NEEDS = (
    Need("No retry to recognise (a retried add may count twice); a floor", Needs(bounds=True)),
    Need(
        "Retries recognised for 10 minutes; a floor",
        Needs(idempotent=True, window=TOKEN_WINDOW_S, bounds=True),
    ),
    Need("Retries recognised for days; a floor", Needs(window=7 * 86400.0, bounds=True)),
    Need("Retries recognised forever; no bound", Needs(window=math.inf)),
    Need("Over 1,000 adds/s on one counter; a floor", Needs(rate=5000.0, bounds=True)),
)


def _failed(row: TargetResult, needs: Needs) -> str | None:
    """Why the run rules this strategy out for ``needs`` (None: it kept its promises)."""
    verdict = verdict_of(row)
    if needs.bounds and verdict["kind"] in ("oversold", "unenforced"):
        return str(verdict["text"])
    if needs.needs_idempotency and int(row["ledger"]["drift"]) != 0:
        return f"drifted by {int(row['ledger']['drift']):+d}"
    return None


def decisions(results: BenchResults) -> list[dict[str, Any]]:
    """One decision per :data:`NEEDS` row: ``need``, ``choice`` (or None), ``options``,
    ``reason``, ``measured`` (the chosen row's figures, if it ran), ``passed_over`` and
    ``expected_usd`` (from the pricing rules)."""
    pricing = results.get("run", {}).get("pricing", {})
    wru = float(pricing.get("usd_per_million_wru", 0.625))
    rru = float(pricing.get("usd_per_million_rru", 0.125))
    rows = {r["name"]: r for r in results.get("strategies", [])}
    out: list[dict[str, Any]] = []
    for need in NEEDS:
        passed_over: list[str] = []
        chosen = None
        for choice in sorted(
            candidates(need.needs, wru_price=wru, rru_price=rru), key=lambda c: c.usd_per_million
        ):
            row = rows.get(choice.strategy)
            why_not = _failed(row, need.needs) if row else None
            if why_not:
                passed_over.append(f"{choice.strategy}: {why_not} in this run")
                continue
            chosen = (choice, row)
            break
        if chosen is None:
            out.append(
                {
                    "need": need.label,
                    "choice": None,
                    "options": {},
                    "reason": "no strategy that meets this need kept its promises in this run",
                    "measured": None,
                    "passed_over": passed_over,
                    "expected_usd": None,
                    "warning": None,
                }
            )
            continue
        choice, row = chosen
        out.append(
            {
                "need": need.label,
                "choice": choice.strategy,
                "options": choice.options,
                "reason": choice.reason,
                "measured": row,
                "passed_over": passed_over,
                "expected_usd": choice.usd_per_million,
                "warning": choice.warning,
            }
        )
    return out
