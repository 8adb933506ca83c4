"""Which strategy? ``dynamodb-counters advise`` asks what a counter needs and answers.

The needs: must a retry be recognised (idempotency), for how long (the window), must the value
stay within a floor or ceiling (bounds), how many adds per second reach one counter (rate), and
how much may a million adds cost (budget). The answer: a strategy (with its options), the reason
in one sentence, and the expected USD per million adds, worked out from DynamoDB's pricing rules
(:mod:`dynamodb_counters.bench.metrics`) for the items each strategy writes.

The rules, in order (each one a branch of :func:`candidates`):

* no idempotency: ``atomic`` (one ``ADD``; bounds in its condition), the cheapest exact write;
* idempotency, no bounds, a window of "forever": ``collection`` (a delta item per add, kept
  until compacted; its value is a Query that grows with the deltas, priced apart);
* idempotency within 10 minutes: ``transaction`` (ClientRequestToken: 2 write units);
* a longer window: ``marker`` (a marker item per add, kept for the window by TTL);
* more adds per second than one item takes (about 1,000 write units/s): ``sharded`` with enough
  shards (a power of two, at most 64), each taking about 250 adds/s: every sharded add writes its
  shard and a marker in one transaction (4 write units), whatever the need for idempotency.

``occ``, ``occ_history`` and ``set`` are never the answer: ``occ`` costs more than ``atomic`` for
the same promise, and the other two remember a number of ids, not a time, so a burst pushes a
retry out of their window.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any

from ._validate import duration
from .bench import metrics as m
from .errors import InvalidInput
from .strategies import STRATEGIES

#: One DynamoDB item takes about this many write units per second (SPEC section 8).
ITEM_WRITE_UNITS_PER_S = 1000.0
#: ClientRequestToken's memory.
TOKEN_WINDOW_S = 600.0
#: The marker TTL offered when a window of "forever" meets a bound.
LONGEST_TTL_S = 365 * 86400.0
#: Sizes priced (bytes): a counter item (name, value, stored definition) and a marker or delta
#: item (key, digest, amount, request id, nonce, expiry) -- both under 1 KB for names and ids
#: of ordinary length, as the bench measures them.
COUNTER_ITEM_BYTES = 300
SIDE_ITEM_BYTES = 250
#: sharded: a shard update and a marker put in one transaction (both under 1 KB), x2.
SHARDED_UNITS_PER_ADD = 4
#: The most shards advised: the largest power of two a counter may have (99).
MAX_SHARDS = 64


def parse_window(text: str) -> float:
    """``"30s"``, ``"10m"``, ``"1h"``, ``"7d"`` (seconds if no unit) or ``"forever"`` (inf)."""
    if text.strip().lower() == "forever":
        return math.inf
    try:
        seconds = duration(text)  # the syntax of every duration flag
    except InvalidInput:
        raise argparse.ArgumentTypeError(
            f"not a window: {text!r} (for example 10m, 1h, 7d or forever)"
        ) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a window must be longer than 0")
    return seconds


def describe_window(seconds: float) -> str:
    """``"1 hour"``, ``"7 days"``, ``"forever"``..."""
    if math.isinf(seconds):
        return "forever"
    for unit, size in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
        if seconds >= size or unit == "second":
            count = seconds / size
            return f"{count:g} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")


def _short_window(seconds: float) -> str:
    """The window as ``--window`` takes it (``1h``, ``7d``)."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class Needs:
    """What one counter needs.

    Attributes:
        idempotent: a retried add with the same request id must not count twice.
        window: for how long a retry must be recognised, in seconds (``math.inf``: forever);
            giving one implies ``idempotent``.
        bounds: the value must stay within a floor and/or ceiling.
        rate: adds per second on this one counter, at peak.
        budget: the most a million adds may cost (USD), if any.
    """

    idempotent: bool = False
    window: float | None = None
    bounds: bool = False
    rate: float = 100.0
    budget: float | None = None

    @property
    def needs_idempotency(self) -> bool:
        return self.idempotent or self.window is not None

    @property
    def window_seconds(self) -> float:
        return TOKEN_WINDOW_S if self.window is None else self.window


@dataclass(frozen=True, slots=True)
class Choice:
    """An answer: the strategy, its options, why, and what a million adds cost."""

    strategy: str
    reason: str
    usd_per_million: float
    units: str
    options: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None


def _wru(size: int, *, transactional: bool = False) -> int:
    return m.write_units(size) * (2 if transactional else 1)


def _price(wru: float, rru: float, wru_price: float, rru_price: float) -> float:
    return m.cost_per_million(wru, rru, wru_price=wru_price, rru_price=rru_price)


def candidates(
    needs: Needs, *, wru_price: float = m.WRU_PRICE, rru_price: float = m.RRU_PRICE
) -> list[Choice]:
    """Every strategy that meets ``needs``, best first (see the module docstring)."""
    found: list[Choice] = []
    counter_wru = _wru(COUNTER_ITEM_BYTES)
    if not needs.needs_idempotency:
        found.append(
            Choice(
                "atomic",
                "no retry needs recognising, so one ADD per add is enough: the cheapest exact "
                "write, with the bounds checked in the same request",
                _price(counter_wru, 0, wru_price, rru_price),
                f"{counter_wru} write unit per add",
            )
        )
    if needs.needs_idempotency and not needs.bounds and math.isinf(needs.window_seconds):
        # A transaction: the check of the counter item and the delta put, each x2.
        delta_wru = _wru(COUNTER_ITEM_BYTES, transactional=True) + _wru(
            SIDE_ITEM_BYTES, transactional=True
        )
        per_read = m.read_units(1000 * SIDE_ITEM_BYTES)
        found.append(
            Choice(
                "collection",
                "only collection remembers every request id for good (a delta item each, "
                "until compacted) and you need no bound, which it cannot enforce; its value() "
                f"reads grow with the deltas (about {per_read:g} read units per 1,000 deltas: "
                "compact them)",
                _price(delta_wru, 0, wru_price, rru_price),
                f"{delta_wru} write units per add (counter check and delta put, x2 in a "
                "transaction), plus value() reads",
            )
        )
    if needs.needs_idempotency and needs.window_seconds <= TOKEN_WINDOW_S:
        wru = _wru(COUNTER_ITEM_BYTES, transactional=True)
        found.append(
            Choice(
                "transaction",
                "a retry within 10 minutes is recognised by DynamoDB itself "
                "(ClientRequestToken), in one transactional write that also checks the bounds",
                _price(wru, 0, wru_price, rru_price),
                f"{wru} write units per add (a transaction costs twice)",
            )
        )
    forever = math.isinf(needs.window_seconds)
    if needs.needs_idempotency and (not forever or needs.bounds):
        wru = _wru(COUNTER_ITEM_BYTES, transactional=True) + _wru(
            SIDE_ITEM_BYTES, transactional=True
        )
        # No strategy both remembers forever and enforces a bound: the longest finite window.
        window = LONGEST_TTL_S if forever else max(needs.window_seconds, 60.0)
        found.append(
            Choice(
                "marker",
                f"a retry within {describe_window(window)} is recognised by a marker item "
                "kept that long (TTL), written in one transaction with the counter update that "
                "checks the bounds",
                _price(wru, 0, wru_price, rru_price),
                f"{wru} write units per add (counter update and marker put, x2 in a transaction)",
                options={"marker_ttl": _short_window(window)},
                warning=(
                    "no strategy remembers request ids forever and enforces a bound "
                    "(collection remembers, but cannot hold a floor): a marker kept a year"
                    if forever
                    else None
                ),
            )
        )
    return [_fit_rate(choice, needs, wru_price, rru_price) for choice in found]


def _sharded(choice: Choice, needs: Needs, wru_price: float, rru_price: float) -> Choice:
    """``sharded`` for a rate one item cannot take: every add writes its shard and a marker on
    the shard's partition in one transaction (4 write units, marker-like, whatever the need for
    idempotency), so a shard takes about 250 adds/s."""
    per_shard = ITEM_WRITE_UNITS_PER_S / SHARDED_UNITS_PER_ADD
    shards = 2 ** math.ceil(math.log2(needs.rate / per_shard))
    warnings = [choice.warning] if choice.warning else []
    if shards > MAX_SHARDS:
        warnings.append(
            f"{needs.rate:,.0f} adds/s needs more than {MAX_SHARDS} shards (about "
            f"{MAX_SHARDS * per_shard:,.0f} adds/s): spread the load over several counters"
        )
        shards = MAX_SHARDS
    options: dict[str, Any] = {"shards": shards}
    if "marker_ttl" in choice.options:
        options["marker_ttl"] = choice.options["marker_ttl"]
    elif choice.strategy == "collection":
        options["marker_ttl"] = _short_window(LONGEST_TTL_S)
        warnings.append(
            "sharded remembers a request id while its marker lives (a year here), not for good "
            "as collection does"
        )
    price = _price(SHARDED_UNITS_PER_ADD, 0, wru_price, rru_price)
    return Choice(
        "sharded",
        f"{needs.rate:,.0f} adds/s is more than one item takes with {choice.strategy} "
        f"(about {_item_rate(choice):,.0f}/s): {shards} shards of about {per_shard:,.0f} adds/s "
        "each share the load, and the bounds by escrow (room moves between shards when one "
        "runs dry, in the add's own transaction)",
        price,
        f"{SHARDED_UNITS_PER_ADD} write units per add (shard update and marker put, x2 in a "
        "transaction); an add on a dry shard also reads the shards (TransactGetItems, 2 read "
        "units each) and writes 2 units per donor shard",
        options=options,
        warning="; ".join(warnings) or None,
    )


def _item_rate(choice: Choice) -> float:
    """Adds per second one counter item takes with this strategy (SPEC section 8)."""
    per_add = {"atomic": 1, "collection": 4, "transaction": 2, "marker": 4}[choice.strategy]
    return ITEM_WRITE_UNITS_PER_S / per_add


def _fit_rate(choice: Choice, needs: Needs, wru_price: float, rru_price: float) -> Choice:
    limit = _item_rate(choice)
    if needs.rate <= limit:
        return choice
    if "sharded" in STRATEGIES:
        return _sharded(choice, needs, wru_price, rru_price)
    shards = 2 ** math.ceil(math.log2(needs.rate / limit))
    split = (
        f"{needs.rate:,.0f} adds/s is more than one item takes with {choice.strategy} "
        f"(about {limit:,.0f}/s): split the counter over {shards} items (the sharded "
        "strategy, SPEC section 8, is not in this version)"
    )
    return Choice(
        choice.strategy,
        choice.reason,
        choice.usd_per_million,
        choice.units,
        options=choice.options,
        warning=f"{choice.warning}; {split}" if choice.warning else split,
    )


def advise(
    needs: Needs, *, wru_price: float = m.WRU_PRICE, rru_price: float = m.RRU_PRICE
) -> Choice:
    """The best strategy for ``needs``; over the budget, it says so in ``warning``."""
    ranked = sorted(
        candidates(needs, wru_price=wru_price, rru_price=rru_price),
        key=lambda c: c.usd_per_million,
    )
    best = ranked[0]
    if needs.budget is not None and best.usd_per_million > needs.budget:
        over = (
            f"no strategy meets these needs within ${needs.budget:,.2f} per million adds; "
            f"the cheapest costs ${best.usd_per_million:,.2f}"
        )
        warning = f"{best.warning}; {over}" if best.warning else over
        return Choice(
            best.strategy, best.reason, best.usd_per_million, best.units, best.options, warning
        )
    return best


# -- the command -----------------------------------------------------------------------------


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``advise`` subcommand's options."""
    parser.add_argument(
        "--idempotent",
        action="store_true",
        help="a retried add (same request id) must not count twice",
    )
    parser.add_argument(
        "--window",
        type=parse_window,
        default=None,
        help="how long a retry must be recognised: 30s, 10m, 1h, 7d or forever "
        "(implies --idempotent; default 10m)",
    )
    parser.add_argument(
        "--floor",
        "--bounds",
        "--ceiling",
        dest="bounds",
        action="store_true",
        help="the value must stay within a floor and/or ceiling",
    )
    parser.add_argument(
        "--rate", type=_rate, default=100.0, help="adds per second on one counter at peak (100)"
    )
    parser.add_argument(
        "--budget", type=_rate, default=None, help="most USD a million adds may cost"
    )
    parser.add_argument(
        "--wru-price", type=_rate, default=m.WRU_PRICE, help="USD per million write units"
    )
    parser.add_argument(
        "--rru-price", type=_rate, default=m.RRU_PRICE, help="USD per million read units"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """``dynamodb-counters advise``: print the answer; exit 0 (1 when over the budget)."""
    import json

    needs = Needs(
        idempotent=args.idempotent,
        window=args.window,
        bounds=args.bounds,
        rate=args.rate,
        budget=args.budget,
    )
    choice = advise(needs, wru_price=args.wru_price, rru_price=args.rru_price)
    over_budget = needs.budget is not None and choice.usd_per_million > needs.budget
    if args.json:
        print(
            json.dumps(
                {
                    "strategy": choice.strategy,
                    "options": choice.options,
                    "reason": choice.reason,
                    "usd_per_million_adds": round(choice.usd_per_million, 4),
                    "units": choice.units,
                    "warning": choice.warning,
                },
                indent=2,
            )
        )
    else:
        options = "".join(f", {k}={v}" for k, v in choice.options.items())
        print(f"strategy: {choice.strategy}{options}")
        print(f"why: {choice.reason}.")
        print(
            f"cost: ${choice.usd_per_million:,.3f} per million adds ({choice.units}, "
            f"at ${args.wru_price}/M write units, ${args.rru_price}/M read units)"
        )
        if choice.warning:
            print(f"warning: {choice.warning}.")
    return 1 if over_budget else 0
