"""``marker``: a transaction of the counter update and a conditional put of a marker item.

``TransactWriteItems`` with the counter's ``ADD`` (bounds and incarnation as its condition) and a
``Put`` of a marker item keyed by the request id's digest, on condition that it does not exist
yet. A replay finds the marker and the transaction is cancelled: nothing changes and the library
reports ``applied=False``. The marker records the amount (a replay with another amount raises
``RequestIdMismatch``), this call's nonce, so a re-send after a lost answer recognises its own
marker (``applied=True``), and the counter's incarnation, so nothing of a deleted counter counts
for one created again under the same name (the digest includes the incarnation too).

Window: while the marker lives. Markers carry a TTL attribute (``ttl_attribute`` of the store,
default ``expires_at``) set ``marker_ttl`` ahead (default 7 days); DynamoDB deletes them some
time after that, and a replay after the deletion is counted again. In a table with a sort key the
marker shares the counter's partition (``sk = "marker#<digest>"``) and ``delete()`` removes it;
in a partition-key-only table it is ``<name>#marker#<digest>`` and is left to its TTL.
Cost: a transaction of two items, so 2 x (counter KB + marker KB) write units.

Holds (SPEC section 13, :mod:`.holds`): a reserve is this add of ``-amount`` with the hold in
place of the marker (and the hold's ended record checked); holds live beside the markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from .._io import error_code
from .._keys import AMOUNT, MARKER_PREFIX
from .._retry import undecided
from .._steps import NOW, Steps
from ..results import AddResult
from .base import MARKER_TTL, Capabilities, OpState, n
from .holds import HoldCall, Holds
from .transaction import TransactionCounter


class MarkerCounter(Holds, TransactionCounter):
    """Counter update plus a conditional marker put, in one transaction."""

    name = "marker"
    window_options = (MARKER_TTL,)
    capabilities = Capabilities(
        idempotent=True,
        window="while the marker lives (marker_ttl, default 7 days)",
        thresholds=True,
        requests_per_add=1,
        write_units_per_add="2 x (counter item KB + marker item KB), at least 4",
        tells_duplicates="yes",
    )

    _refusals_check_ended = True

    def _configure(self, window: Mapping[str, Any]) -> None:
        self.marker_ttl: timedelta = window["marker_ttl"]
        self._ttl_seconds = self.marker_ttl.total_seconds()

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        while True:
            if isinstance(call, HoldCall):
                marker = call.item  # a reserve: the hold is its evidence
            else:
                now: float = yield NOW
                marker = self._side_item(call, MARKER_PREFIX)
                marker[self.layout.ttl_attribute] = n(int(now + self._ttl_seconds))
            put = self._put_new_side_item(marker)
            items = self._with_hold(call, [self._counter_update(call), put])
            try:
                yield from self._send(call, "TransactWriteItems", {"TransactItems": items})
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = self._cancellation_reasons(exc)
                if len(reasons) < len(items):
                    raise
                ended = yield from self._hold_ended(call, reasons)
                if ended is not None:
                    return ended
                counter_reason, marker_reason = reasons[0], reasons[1]
                # The marker first: a counted request is a duplicate even when the counter's
                # condition (a bound) would also fail now.
                if marker_reason.get("Code") == "ConditionalCheckFailed":
                    return (yield from self._replayed(call, marker_reason, marker, AMOUNT))
                if counter_reason.get("Code") == "ConditionalCheckFailed":
                    if undecided(marker_reason):
                        # The marker was throttled or held: the request may be counted
                        # already, so the bound alone cannot refuse it. Nothing was applied.
                        yield from self._try_again(call, exc)
                        continue
                    failed = yield from self._failed_write(counter_reason.get("Item"), call, exc)
                    raise failed from exc
                raise
            return call.result(True, None)

    def _give_back(self, shard: int | None, amount: int) -> dict[str, Any]:
        return self._counter_update(OpState(amount=amount, request_id=None, digest=None))
