"""One verdict per strategy, the same words in the terminal and in the report.

The verdict puts first what a user must not miss: a bound the run asked for and the strategy
could not enforce (``collection`` with a floor), a bound crossed, a drift from the ledger; then
notes that qualify the figures (double counts that cancel in a net drift, adds whose outcome is
unknown, duplicates the strategy could not tell).
"""

from __future__ import annotations

from .schema import Ledger, TargetResult, Verdict

#: One line under the terminal's table, and the report's key to its columns.
LEGEND = (
    "acked: add() returned; rej: refused by the floor/ceiling; err: gave up after retries; "
    "dup: told as duplicates (? = could not tell, applied=None); drift: final - ledger of "
    "acked ids; ops/s: median of rounds (min-max); $/M ack: USD per million acked adds"
)


def _bound_words(ledger: Ledger) -> tuple[str, int]:
    """("floor" or "ceiling", by how much it was crossed)."""
    if ledger.get("oversold"):
        return "floor", int(ledger["oversold"])
    return "ceiling", int(ledger.get("over_ceiling") or 0)


def verdict_of(row: TargetResult) -> Verdict:
    """``{"kind": ..., "text": ..., "notes": [...]}`` for one row of the results.

    ``kind`` is ``exact``, ``drifted``, ``oversold`` (a bound the strategy enforces was crossed:
    a bug) or ``unenforced`` (a bound the run asked for that the strategy cannot enforce was
    crossed).
    """
    ledger, counts = row["ledger"], row["counts"]
    drift = int(ledger["drift"])
    which, by = _bound_words(ledger)
    notes: list[str] = []
    if by and ledger.get("bounds_dropped"):
        kind = "unenforced"
        text = (
            f"floor not enforced: oversold by {by:,}"
            if which == "floor"
            else f"ceiling not enforced: over by {by:,}"
        )
    elif by:
        kind = "oversold"
        text = f"oversold by {by:,}" if which == "floor" else f"over the ceiling by {by:,}"
    elif drift:
        kind, text = "drifted", f"drifted by {drift:+,d}"
    else:
        kind, text = "exact", "exact"
    if drift and kind != "drifted":
        notes.append(f"drifted by {drift:+,d}")
    if ledger.get("bounds_dropped") and not by:
        notes.append("bound not enforced by this strategy")
    exposed = ledger.get("lost_answer_ops") or {}
    if drift and not row["capabilities"].get("idempotent"):
        # What makes up a net drift, named so that it adds up on its face: botocore's re-sends
        # after lost answers (split by sign: a double +1 and a double -1 cancel) and the
        # application's own duplicate sends, which a strategy without request ids counts again.
        up, down = int(exposed.get("resent_up", 0)), int(exposed.get("resent_down", 0))
        parts = []
        if up or down:
            parts.append(f"re-sent after lost answers: {up:+d} up, {down:+d} down")
        twice = int(counts.get("acknowledged", 0)) - int(counts.get("acknowledged_ids", 0))
        if twice > 0 and counts.get("acknowledged_ids") is not None:
            parts.append(
                f"{twice} of the application's own duplicate sends counted again"
                if twice > 1
                else "1 of the application's own duplicate sends counted again"
            )
        if parts:
            notes.append("net; " + "; ".join(parts))
    unknown = int(counts.get("outcome_unknown") or 0)
    if unknown:
        low, high = counts.get("outcome_unknown_range") or [0, 0]
        beyond = int(ledger.get("drift_beyond_unknown", drift))
        what = "failed" if row["capabilities"].get("idempotent") else "refused or failed"
        adds = "add" if unknown == 1 else "adds"
        note = f"{unknown} {adds} {what} after a lost answer may have landed: {low:+d}..{high:+d}"
        if drift and beyond:
            note += f", {beyond:+d} of the drift beyond that"
        notes.append(note)
    untold = int(counts.get("unknown") or 0)
    if untold:
        notes.append(f"duplicates not told for {untold} of its adds (applied=None)")
    errors = counts.get("errors_by_type") or {}
    if errors:
        notes.append(", ".join(f"{n} {kind}" for kind, n in sorted(errors.items())))
    for option, values in sorted((row["capabilities"].get("non_default_options") or {}).items()):
        notes.append(f"run with {option}={values['run']}, not the default {values['default']}")
    return {"kind": kind, "text": text, "notes": notes}


def verdict_line(row: TargetResult) -> str:
    """The verdict as one line of text."""
    verdict = verdict_of(row)
    notes = "; ".join(verdict["notes"])
    return str(verdict["text"]) + (f" ({notes})" if notes else "")
