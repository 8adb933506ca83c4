"""A counter's definition as stored on its item (SPEC section 7), and how a handle meets it.

``create()`` writes ``_def`` (this module's JSON: strategy id, bounds, window options) and
``_inc`` (a random incarnation id) on the counter item. A handle states what it expects
(:class:`Requested`: only what the caller passed explicitly) and, on its first operation, meets
the stored definition: what it stated must equal what is stored, else ``DefinitionMismatch``;
what it left out is taken from the store. An item without ``_def`` (written by other code, or
by the first release) is used with the handle's arguments, ``strategy`` defaulting to ``atomic``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from ._keys import DEFINITION, INCARNATION
from .errors import DefinitionMismatch, InvalidInput
from .results import CounterDefinition

FORMAT = 1
DEFAULT_STRATEGY = "atomic"


class _Unset:
    """Marks an argument the caller did not pass."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


def _plain(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def encode(definition: CounterDefinition) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "strategy": definition.strategy,
            "floor": definition.floor,
            "ceiling": definition.ceiling,
            "options": {k: _plain(v) for k, v in sorted(definition.options.items())},
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def decode(text: str) -> CounterDefinition:
    from .strategies import STRATEGIES

    try:
        data = json.loads(text)
        strategy = data["strategy"]
        cls = STRATEGIES[strategy]
        options = dict(data.get("options") or {})
        if "marker_ttl" in options:
            options["marker_ttl"] = timedelta(seconds=options["marker_ttl"])
        window = cls.check_window(options)
        floor, ceiling = data.get("floor"), data.get("ceiling")
        if not all(
            b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in (floor, ceiling)
        ):
            raise TypeError("bounds")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"the counter's stored definition is not readable: {text[:200]!r}"
        ) from exc
    return CounterDefinition(
        strategy=strategy,
        floor=floor,
        ceiling=ceiling,
        options=MappingProxyType(window),
    )


@dataclass(frozen=True, slots=True)
class Known:
    """What a store knows of a counter item: its definition and incarnation (None: none)."""

    definition: CounterDefinition | None
    incarnation: str | None


def known_from_item(item: Mapping[str, Any]) -> Known:
    text = item.get(DEFINITION, {}).get("S")
    incarnation = item.get(INCARNATION, {}).get("S")
    if text is None or incarnation is None:
        return Known(None, None)
    return Known(decode(text), incarnation)


@dataclass(frozen=True, slots=True)
class Requested:
    """What a handle's caller stated explicitly (UNSET: not stated)."""

    strategy: Any = UNSET
    floor: Any = UNSET
    ceiling: Any = UNSET
    window: Mapping[str, Any] = field(default_factory=dict)

    def for_item_without_definition(self) -> CounterDefinition:
        from .strategies import STRATEGIES

        strategy = self.strategy
        if strategy is UNSET:
            # Window options name their strategy (history: occ_history...); else atomic. An
            # option two strategies share (marker_ttl) names the first one (marker).
            owners = [
                cls.name
                for cls in STRATEGIES.values()
                if self.window and set(self.window) <= cls.own_options
            ]
            strategy = owners[0] if owners else DEFAULT_STRATEGY
        return CounterDefinition(
            strategy=strategy,
            floor=None if self.floor is UNSET else self.floor,
            ceiling=None if self.ceiling is UNSET else self.ceiling,
            options=MappingProxyType(STRATEGIES[strategy].check_window(self.window)),
            stored=False,
        )

    def check(self, name: str, stored: CounterDefinition) -> None:
        """Raise DefinitionMismatch when a stated value differs from the stored one."""
        differences: list[str] = []
        if self.strategy is not UNSET and self.strategy != stored.strategy:
            differences.append(f"strategy {self.strategy!r} (stored: {stored.strategy!r})")
        for what in ("floor", "ceiling"):
            stated = getattr(self, what)
            if stated is not UNSET and stated != getattr(stored, what):
                differences.append(f"{what} {stated!r} (stored: {getattr(stored, what)!r})")
        for option, stated in sorted(self.window.items()):
            if option not in stored.options:
                differences.append(
                    f"option {option}={stated!r} (strategy {stored.strategy!r} has no such option)"
                )
            elif _plain(stated) != _plain(stored.options[option]):
                differences.append(f"{option}={stated!r} (stored: {stored.options[option]!r})")
        if differences:
            what = (
                f"counter {name!r} is stored with another definition: this handle states "
                + "; ".join(differences)
            )
            raise DefinitionMismatch(
                what + ". Open it with store.counter(name) to use the stored one.",
                stored=stored,
                differences=what,
            )
