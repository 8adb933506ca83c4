"""``set``: UpdateItem that adds the amount and the request id to a string set, atomically.

``ADD <value> :amount, _ids :{digest}`` on condition that neither generation of ids contains the
digest yet (``contains()``), the current generation has room (``size()``), the generation is
the one the handle expects, and no bound is crossed. When the current generation holds
``capacity`` ids, the same conditional write that adds the next id **rotates**: it moves the
current ids to ``_prev`` (dropping the older generation), starts ``_ids`` with the new id and
bumps ``_gen``. Duplicates are checked against both generations, so the window is the last
``capacity`` to ``2 x capacity`` request ids, and the counter works forever.

When the condition fails DynamoDB returns the item (``ReturnValuesOnConditionCheckFailure``), so
the library tells, without another request, a duplicate (``applied=False``) from a bound
(``ThresholdExceeded``) from a generation that moved under the handle (it retries with the
right one: one extra request per rotation per handle). The item also records the nonce of the
last call that wrote it: a re-send after a lost answer that finds its own nonce reports
``applied=True``; if another writer came in between, ``applied`` is ``None``. When an add's
answer was lost and rotations since have dropped the generation it would have landed in, the add
re-raises the original error instead of guessing.

Cost: every id makes the item ~33 bytes larger and write units grow with it (1 per KB); up to
``2 x capacity`` ids are held, so ``capacity`` is at most 5000 (the item stays well inside
DynamoDB's 400 KB; ``CapacityExceeded`` if an item cannot grow anyway). A replay with another
amount cannot be told from a duplicate and is reported as one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from .._io import error_code, response_of
from .._keys import GENERATION, IDS, LAST, PREVIOUS_IDS
from .._steps import Steps
from ..results import AddResult
from .base import Capabilities, OpState, Strategy, WindowOption, n, to_int

MAX_CAPACITY = 5000


class SetCounter(Strategy):
    """The request ids counted lately live in two generations of string sets on the item."""

    name = "set"
    idempotent = True
    window_options = (
        WindowOption("capacity", 100, "request ids a generation holds", maximum=MAX_CAPACITY),
    )
    capabilities = Capabilities(
        idempotent=True,
        window="the last `capacity` to 2 x `capacity` request ids (default 100: two generations)",
        thresholds=True,
        requests_per_add=1,
        write_units_per_add="1 per KB of the counter item, ~33 bytes per id held",
        tells_duplicates="yes (None if another writer raced a lost answer)",
    )

    def _configure(self, window: Mapping[str, Any]) -> None:
        self.capacity: int = window["capacity"]
        # What the handle last saw of the item: (generation, current generation full). A
        # stale guess costs one failed write, whose returned item corrects it. Shared by the
        # threads using the handle: it only moves forward, under a lock.
        self._hint = (0, False)
        self._hint_lock = threading.Lock()

    def _learn(self, hint: tuple[int, bool]) -> None:
        if hint <= self._hint:
            return  # nothing new (the usual case): no lock taken
        with self._hint_lock:
            self._hint = max(self._hint, hint)

    def _hint_of(self, item: Mapping[str, Any]) -> tuple[int, bool]:
        generation = int(item.get(GENERATION, {}).get("N", "0"))
        return generation, len(item.get(IDS, {}).get("SS", [])) >= self.capacity

    def observe(self, item: Mapping[str, Any]) -> None:
        self._learn(self._hint_of(item))

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        assert call.digest is not None
        while True:
            generation, rotate = self._hint
            names = {"#ids": IDS, "#prev": PREVIOUS_IDS, "#last": LAST, "#gen": GENERATION}
            values: dict[str, Any] = {
                ":amount": n(call.amount),
                ":idset": {"SS": [call.digest]},
                ":id": {"S": call.digest},
                ":cap": n(self.capacity),
                ":nonce": {"S": call.nonce},
            }
            conditions = [
                *self._conditions(call.amount, names, values),
                # Not counted yet, in either generation: this is the idempotency check.
                "NOT contains(#ids, :id)",
                "NOT contains(#prev, :id)",
            ]
            if generation == 0:
                conditions.append("attribute_not_exists(#gen)")
            else:
                conditions.append("#gen = :gen")
                values[":gen"] = n(generation)
            if rotate:
                # The current generation is full: this write starts the next one.
                conditions.append("size(#ids) >= :cap")
                values[":next"] = n(generation + 1)
                update = "ADD #v :amount SET #prev = #ids, #ids = :idset, #last = :nonce, "
                update += "#gen = :next"
                call.landings.add(generation + 1)
            else:
                # Room for one more id in the current generation.
                conditions.append("(attribute_not_exists(#ids) OR size(#ids) < :cap)")
                update = "ADD #v :amount, #ids :idset SET #last = :nonce"
                call.landings.add(generation)
            try:
                answer = yield from self._send(
                    call,
                    "UpdateItem",
                    {
                        "TableName": self.layout.table,
                        "Key": self.key,
                        "UpdateExpression": update,
                        "ConditionExpression": " AND ".join(conditions),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                        "ReturnValues": "UPDATED_NEW",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old = yield from self._explain(response_of(exc).get("Item"), call)
                done = self._counted(old, call)
                if done is not None:
                    return done
                # Judged from the item this write met, never from the shared hint.
                if self._hint_of(old) != (generation, rotate):
                    yield from self._try_again(
                        call, exc
                    )  # the generation moved: try with the new one
                    continue
                raise (yield from self._failed_write(old, call, exc)) from exc
            attributes = answer.get("Attributes", {})
            full = len(attributes.get(IDS, {}).get("SS", [])) >= self.capacity
            self._learn((generation + 1 if rotate else generation, full))
            new = attributes.get(self.layout.value_attribute)
            return call.result(True, None if new is None else to_int(new["N"]))

    def _counted(self, old: Mapping[str, Any], call: OpState) -> AddResult | None:
        """Learn the item's generation; tell whether the id is counted (or cannot be known)."""
        ids = old.get(IDS, {}).get("SS", [])
        hint = self._hint_of(old)
        self._learn(hint)
        generation = hint[0]
        if call.digest in ids or call.digest in old.get(PREVIOUS_IDS, {}).get("SS", []):
            if old.get(LAST, {}).get("S") == call.nonce:
                # Nobody wrote since this call's own write: the item holds its new value.
                mine = old.get(self.layout.value_attribute)
                return call.result(True, None if mine is None else to_int(mine["N"]))
            return call.result(None if call.ambiguous else False, None)
        if call.ambiguous and call.landings and generation > min(call.landings) + 1:
            # A write of ours may have landed in a generation that has been dropped since.
            call.unknown_outcome()
        return None
