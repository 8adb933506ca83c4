"""Numbers the bench reports: percentiles, item sizes, request units and cost.

Request units follow DynamoDB's published pricing rules (on-demand):

* a write request unit (WRU) covers a write of up to 1 KB; a bigger item costs one unit per KB
  started. The size charged is the larger of the item before and after the write. A write whose
  condition fails is still charged (at least one unit).
* a read request unit (RRU) covers a strongly consistent read of up to 4 KB (half a unit when
  eventually consistent). A ``Query`` is charged for the items it reads, summed, per 4 KB.
* transactional writes cost twice: 2 WRU per KB of each item in ``TransactWriteItems``. A replay
  of a ``ClientRequestToken`` within 10 minutes changes nothing and is charged as a read of the
  items (AWS: "the number of read capacity units consumed in reading the item"), no write.
* transactional reads cost twice too: 2 RRU per 4 KB of each item in ``TransactGetItems``.
* a ``BatchGetItem`` is charged as one ``GetItem`` per key read: each item returned is rounded up
  to 4 KB on its own (the sizes are not added up first), a key with no item costs the minimum
  read, half a unit each unless ``ConsistentRead``; unprocessed keys are not charged.
* a write whose condition fails is charged on the larger of the existing item and the item the
  write would have made.
* a ``Query`` reads whole items: its charge is on every attribute of each item, whatever its
  ``ProjectionExpression`` returns.
* throttled requests are not charged.

Item sizes are *estimates* from the requests and answers the bench sees (see
:class:`ItemSizes`): the size of an attribute is the UTF-8 length of its name plus its value's
size -- strings by UTF-8 length, numbers at 1 byte per two significant digits plus 1, sets as the
sum of their members, lists and maps at 3 bytes plus 1 byte and the size of each element.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

#: us-east-1 on-demand prices since November 2024, USD per million request units.
WRU_PRICE = 0.625
RRU_PRICE = 0.125


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def number_size(text: str) -> int:
    """Bytes DynamoDB counts for a number: 1 per two significant digits, plus 1."""
    mantissa = re.split(r"[eE]", text.strip().lstrip("+-"), maxsplit=1)[0].replace(".", "")
    significant = mantissa.strip("0") or "0"
    return (len(significant) + 1) // 2 + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's wire format (``{"S": "x"}``...)."""
    for kind, raw in value.items():
        if kind == "S":
            return len(str(raw).encode("utf-8"))
        if kind == "N":
            return number_size(str(raw))
        if kind == "B":
            return len(raw)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "SS":
            return sum(len(str(s).encode("utf-8")) for s in raw)
        if kind == "NS":
            return sum(number_size(str(s)) for s in raw)
        if kind == "BS":
            return sum(len(b) for b in raw)
        if kind == "L":
            return 3 + sum(1 + value_size(v) for v in raw)
        if kind == "M":
            return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in raw.items())
    return 0


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of an item: attribute names plus values."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def write_units(size: int) -> int:
    """Write request units for a (non-transactional) write of an item of ``size`` bytes."""
    return max(1, math.ceil(size / 1024))


def read_units(size: int, *, consistent: bool = True) -> float:
    """Read request units for reading ``size`` bytes."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def cost_per_million(
    wru_per_op: float, rru_per_op: float, *, wru_price: float, rru_price: float
) -> float:
    """USD per million operations at on-demand prices (USD per million request units)."""
    return wru_per_op * wru_price + rru_per_op * rru_price


def key_id(table: str, key: Mapping[str, Any]) -> str:
    return table + "\x00" + json.dumps(key, sort_keys=True, default=str)


# -- a small evaluator of update expressions, enough to follow item sizes ------------------------

_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r":[A-Za-z0-9_]+")


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _name(path: str, names: Mapping[str, str]) -> str:
    path = path.strip()
    return names.get(path, path)


def _add_number(old: str, delta: str) -> str:
    try:
        return str(Decimal(old) + Decimal(delta))
    except InvalidOperation:
        return delta


def apply_update(
    item: Mapping[str, Any],
    expression: str,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The item after ``expression``, as far as sizes go.

    Top-level ``SET a = :v`` / ``ADD a :v`` / ``REMOVE a`` / ``DELETE a :v`` are applied exactly;
    a ``SET`` whose right side is a function or arithmetic takes the first value it mentions.
    """
    names = names or {}
    values = values or {}
    new = dict(item)
    pieces = _CLAUSE.split(expression)
    # pieces: ["", "SET", " a = :v, b = :w ", "ADD", " c :x"]
    for keyword, body in zip(pieces[1::2], pieces[2::2], strict=False):
        keyword = keyword.upper()
        for action in _split_top(body):
            if keyword == "SET":
                target, _, rhs = action.partition("=")
                found = _PLACEHOLDER.findall(rhs)
                if found and found[0] in values:
                    attr = _name(target, names)
                    current = new.get(attr)
                    if rhs.strip() == found[0] or current is None:
                        new[attr] = values[found[0]]
            elif keyword in ("ADD", "DELETE"):
                target, _, placeholder = action.strip().partition(" ")
                value = values.get(placeholder.strip())
                if value is None:
                    continue
                attr = _name(target, names)
                current = new.get(attr)
                kind = next(iter(value))
                if keyword == "ADD" and kind == "N":
                    base = current.get("N", "0") if current else "0"
                    new[attr] = {"N": _add_number(base, value["N"])}
                elif kind in ("SS", "NS", "BS"):
                    members = list(current.get(kind, [])) if current else []
                    if keyword == "ADD":
                        members += [m for m in value[kind] if m not in members]
                    else:
                        members = [m for m in members if m not in value[kind]]
                    if members:
                        new[attr] = {kind: members}
                    else:
                        new.pop(attr, None)
            elif keyword == "REMOVE":
                new.pop(_name(action, names), None)
    return new


def mean(values: Iterable[float]) -> float | None:
    data = list(values)
    return sum(data) / len(data) if data else None
