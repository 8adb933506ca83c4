"""``occ``: optimistic concurrency control with an entity tag.

Read the item (strongly consistent), check the bounds in the client, then ``SET`` the new value
and a fresh random tag on condition that the tag is still the one read. A collision is retried
with the item DynamoDB returns on the failed condition (``ReturnValuesOnConditionCheckFailure``),
so a retry costs one request, not two; after ``max_attempts`` collisions, ``ContentionError``.

Not idempotent. When botocore re-sends a write whose answer was lost, the re-send fails its
condition and the returned item carries *our* new tag: the library sees its own write and
reports it once. If another writer changed the item in between, that proof is gone and the
library cannot tell: when the add may still go through it is counted again (**over-count**);
when it would now cross a bound, the add re-raises the original error (outcome unknown), never
``ThresholdExceeded`` for an add that may have landed. An application-level retry of a failed
``add()`` always counts again. ``occ_history`` closes both gaps.
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from .._io import error_code, response_of
from .._keys import TAG
from .._steps import Steps
from ..results import AddResult
from .base import Capabilities, OpState, Strategy, n


class OccCounter(Strategy):
    """GetItem, then a conditional SET guarded by an entity tag."""

    name = "occ"
    idempotent = False
    capabilities = Capabilities(
        idempotent=False,
        window="none: an application retry is counted again",
        thresholds=True,
        requests_per_add=2,
        write_units_per_add="1 per KB of the counter item (+1 read unit for the GetItem)",
        tells_duplicates="no (no request ids)",
    )

    def _create_attributes(self) -> dict[str, Any]:
        return {TAG: {"S": uuid.uuid4().hex[:16]}}

    # Hooks for occ_history.
    def _already_counted(self, item: dict[str, Any], call: OpState) -> AddResult | None:
        return None

    def _extra_updates(
        self,
        item: dict[str, Any],
        call: OpState,
        tag: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> list[str]:
        return []

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        item = yield from self._get_item(consistent=True, call=call)
        while True:
            done = self._already_counted(item, call)
            if done is not None:
                return done
            current = self._value_of(item)
            if self._would_cross(current, call.amount):
                if call.ambiguous and self._may_have_landed(call, item):
                    call.unknown_outcome()
                raise self._threshold_exceeded(current, call.amount)
            new_value = current + call.amount
            tag = uuid.uuid4().hex[:16]
            call.written.add(tag)
            names = {"#v": self.layout.value_attribute, "#tag": TAG}
            values: dict[str, Any] = {":new": n(new_value), ":newtag": {"S": tag}}
            exists = self._exists_clause(names, values)
            sets = [
                "#v = :new",
                "#tag = :newtag",
                *self._extra_updates(item, call, tag, names, values),
            ]
            old_tag = item.get(TAG)
            if old_tag is not None:
                # The tag alone proves nobody wrote since our read.
                guard = "#tag = :oldtag"
                values[":oldtag"] = old_tag
            elif self.layout.value_attribute in item:
                # An item written by someone else, without a tag yet: guard on the value.
                guard = "attribute_not_exists(#tag) AND #v = :old"
                values[":old"] = item[self.layout.value_attribute]
            else:
                guard = "attribute_not_exists(#tag) AND attribute_not_exists(#v)"
            try:
                yield from self._send(
                    call,
                    "UpdateItem",
                    {
                        "TableName": self.layout.table,
                        "Key": self.key,
                        "UpdateExpression": "SET " + ", ".join(sets),
                        "ConditionExpression": f"{exists} AND ({guard})",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                seen = yield from self._explain(response_of(exc).get("Item"), call)
                seen_tag = seen.get(TAG, {}).get("S")
                if seen_tag in call.written:
                    # A lost answer: botocore's re-send found the write it had already made.
                    return call.result(True, self._value_of(seen) if seen_tag == tag else None)
                yield from self._try_again(call, exc)
                item = dict(seen)
                continue
            return call.result(True, new_value)
