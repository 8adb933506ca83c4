"""The retry policy: what a failed answer means, and what the library does about it.

Every operation of every strategy (an add, ``create``, ``delete``, ``value``, ``compact``, a
sharded add's moves and snapshots) runs its tries through ``Strategy._with_retries``
(:mod:`dynamodb_counters.strategies.base`), which asks :func:`classify` what a failure is and
follows this table. botocore has already retried what it retries (single-item throttles,
``TransactionInProgressException``, timeouts, 5xx) before an answer reaches it.

=====================  ========  =========================================  =====================
outcome                applied?  the library                                at the end
=====================  ========  =========================================  =====================
CONFLICT               no        tries again after a pause, up to           ContentionError
                                 ``max_attempts`` tries in all
THROTTLED_TRANSACTION  no        the same, on the same budget               DynamoDB's error,
                                                                            unchanged
CONDITION_FAILED       no        the strategy reads the reasons first       ThresholdExceeded,
                                 (bound, replay, missing counter)           a duplicate, ...
AMBIGUOUS              maybe     idempotent strategies: up to               the original error
                                 ``ambiguity_retries`` more tries, the
                                 same request id, evidence and nonce
UNREACHABLE            maybe     no                                         the original error
THROTTLED_REQUEST      no        no: botocore retried it already            DynamoDB's error
ITEM_TOO_LARGE         no        no                                         CapacityExceeded
OVERFLOW               no        no                                         ThresholdExceeded
OTHER                  --        no                                         the original error
=====================  ========  =========================================  =====================

What each outcome is, and why the library does what it does. Check it against the DynamoDB API
reference, ``TransactWriteItems`` and ``TransactGetItems`` (error ``TransactionCanceledException``:
"the entire transaction request was canceled", one ``CancellationReasons`` entry per item, in
order, ``Code`` ``None`` for an item that did not cause it;
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html),
and "Error handling with DynamoDB" in the developer guide (which errors are worth retrying):

* **CONFLICT** -- ``TransactionCanceledException`` whose reasons are only ``None`` and
  ``TransactionConflict`` (another transaction, or for a ``TransactGetItems`` any write, held an
  item), or a single-item ``TransactionConflictException`` (the item is in a running
  transaction). Nothing was applied and botocore does not retry it: the library tries again
  after a pause drawn from 0 to ``min(0.5 s, retry_delay x 2^try)`` (:func:`backoff`, full
  jitter), so colliding writers spread apart instead of colliding again. Except when botocore
  got it re-sending a write whose answer was lost: that earlier send may have landed, and a
  strategy without evidence (``atomic``, ``occ``) re-raises the lost answer's error rather than
  send the add again (it could count twice).
* **THROTTLED_TRANSACTION** -- a cancellation whose reasons are only ``None``,
  ``TransactionConflict``, ``ThrottlingError`` (an on-demand table over its throughput) or
  ``ProvisionedThroughputExceeded`` (a provisioned one), at least one a throttle. Nothing was
  applied, and botocore does not retry it (it does retry the single-item
  ``ThrottlingException``): the library does, as it does a conflict. When the tries run out it
  re-raises DynamoDB's error unchanged, as botocore does for a single request it gave up on: the
  caller may slow down, and retry with the same request id. (When an earlier try of the same
  operation was ambiguous, neither this nor ``ContentionError`` is raised at the end, since both
  say "nothing changed": the first ambiguous error is.)
* **CONDITION_FAILED** -- a cancellation with a ``ConditionalCheckFailed`` reason (whatever the
  other reasons): a condition said no, and only the strategy knows which (a bound, a replayed
  marker, a missing counter); it interprets the reasons before the policy sees the error. One
  that reaches the policy is re-raised. An item whose reason is a throttle or a conflict
  (:func:`undecided`) was not judged: when the strategy's answer hangs on it (``marker``'s
  marker beside its bound), it tries again as for a conflict, never refuses.
* **AMBIGUOUS** -- a timeout or a dropped connection after botocore's own retries, a 5xx,
  ``TransactionInProgressException``: the write may or may not have happened. An idempotent
  strategy tries again with the same request id, evidence and nonce (its condition finds out
  whether the first try landed); a non-idempotent one re-raises at once (it could count twice).
  When the evidence has left the strategy's window meanwhile (``occ_history``'s list, ``set``'s
  generations), the add re-raises the first ambiguous error: never ``ThresholdExceeded`` for an
  add that landed, never a second application.
* **UNREACHABLE** -- ``EndpointConnectionError`` or ``ConnectTimeoutError`` after botocore's
  retries: the endpoint is gone for now; the caller hears at once (not after more rounds of
  botocore's backoff, each waiting out a connect timeout) and retries later with the same
  request id. A connect timeout sent nothing (the connection was never made, in botocore and
  aiobotocore alike): a botocore re-send after one is no ambiguity. ``EndpointConnectionError``
  may have been sent: aiobotocore raises it for a connection reset while the answer was read.
* **THROTTLED_REQUEST** -- ``ThrottlingException``, ``ProvisionedThroughputExceededException``,
  ``RequestLimitExceeded`` on a single request: botocore already retried it with its own
  backoff; retrying here would only multiply the load on a hot partition.
* **ITEM_TOO_LARGE**, **OVERFLOW** -- the write would pass 400 KB or 38 digits: nothing changed,
  and trying again cannot help; the library error says what happened.

A re-send by botocore itself makes a write ambiguous (an earlier send's answer was not seen),
unless every failure botocore retried is documented as not applied (:func:`was_not_applied`).
A read that botocore re-sent changes nothing.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectTimeoutError as _ConnectTimeout

from ._io import error_code, response_of
from .errors import ContentionError

#: The longest pause between two tries, in seconds.
BACKOFF_CAP = 0.5

#: Operations that change nothing: a re-send of one is never ambiguous.
READS = frozenset({"GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"})

#: Cancellation reasons that say "nothing was applied, and it may work next time".
CONFLICT_REASON = "TransactionConflict"
THROTTLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
_NO_ERROR = "None"  # the items that did not cause the cancellation
_RETRYABLE_REASONS = frozenset({_NO_ERROR, CONFLICT_REASON, *THROTTLE_REASONS})
_CHECK_FAILED = "ConditionalCheckFailed"

_AMBIGUOUS_CODES = frozenset(
    {
        "InternalServerError",
        "ServiceUnavailable",
        "InternalFailure",
        "TransactionInProgressException",
    }
)
_AMBIGUOUS_ERRORS = (
    ReadTimeoutError,
    ConnectionClosedError,
    EndpointConnectionError,
)
#: Failures that sent nothing: the connection was never made.
_NOT_SENT_ERRORS = (_ConnectTimeout,)
#: Single-request answers DynamoDB documents as "nothing was applied" that botocore retries.
_THROTTLE_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)
#: Single-request answers after which a botocore re-send is no ambiguity.
_NOT_APPLIED_CODES = _THROTTLE_CODES | {"TransactionConflictException"}


class Outcome(enum.Enum):
    """What a failed request means, as the retry policy sees it (a row of the module's table)."""

    CONFLICT = "conflict"
    THROTTLED_TRANSACTION = "throttled transaction"
    CONDITION_FAILED = "condition failed"
    AMBIGUOUS = "ambiguous"
    UNREACHABLE = "unreachable"
    THROTTLED_REQUEST = "throttled request"
    ITEM_TOO_LARGE = "item too large"
    OVERFLOW = "overflow"
    OTHER = "other"

    @property
    def try_again(self) -> bool:
        """Nothing was applied and a new try may succeed: the library tries again, up to
        ``max_attempts`` tries in all."""
        return self in (Outcome.CONFLICT, Outcome.THROTTLED_TRANSACTION)


def cancellation_codes(exc: BaseException) -> list[str] | None:
    """The ``Code`` of each cancellation reason (``"None"`` where it is missing), or None when
    ``exc`` is not a ``TransactionCanceledException``."""
    if not isinstance(exc, ClientError) or error_code(exc) != "TransactionCanceledException":
        return None
    reasons = response_of(exc).get("CancellationReasons") or []
    return [str(reason.get("Code") or _NO_ERROR) for reason in reasons]


def is_not_applied_cancellation(exc: BaseException) -> bool:
    """A cancelled transaction whose every reason is ``None``, ``TransactionConflict``,
    ``ThrottlingError`` or ``ProvisionedThroughputExceeded`` (at least one not ``None``):
    DynamoDB applied nothing, and a new try may succeed."""
    codes = cancellation_codes(exc)
    if not codes or not set(codes) <= _RETRYABLE_REASONS:
        return False
    return any(code != _NO_ERROR for code in codes)


def is_throttled_cancellation(exc: BaseException) -> bool:
    """A not-applied cancellation (:func:`is_not_applied_cancellation`) with a throttle among
    its reasons: some item lacked throughput."""
    if not is_not_applied_cancellation(exc):
        return False
    return any(code in THROTTLE_REASONS for code in cancellation_codes(exc) or [])


def undecided(reason: Mapping[str, Any]) -> bool:
    """An item's cancellation reason that leaves its condition undecided: the item was
    throttled, or held by another transaction. (``None``: its condition passed;
    ``ConditionalCheckFailed``: it failed.) A strategy must not conclude from such an item
    -- that a replay's marker is absent, say -- and nothing was applied: it tries again."""
    return str(reason.get("Code") or _NO_ERROR) in _RETRYABLE_REASONS - {_NO_ERROR}


def is_conflict(exc: BaseException) -> bool:
    """True when DynamoDB refused the request because of a concurrent transaction (and for
    nothing else): ``TransactionConflictException``, or a cancellation whose reasons are only
    ``None`` and ``TransactionConflict``."""
    if error_code(exc) == "TransactionConflictException":
        return True
    return is_not_applied_cancellation(exc) and not is_throttled_cancellation(exc)


def is_ambiguous(exc: BaseException) -> bool:
    """True when a failed call may still have been applied by the server."""
    if isinstance(exc, _AMBIGUOUS_ERRORS):
        return True
    return isinstance(exc, ClientError) and error_code(exc) in _AMBIGUOUS_CODES


def is_overflow(exc: BaseException) -> bool:
    """True when DynamoDB refused a number beyond its 38 digits."""
    if not isinstance(exc, ClientError):
        return False
    texts = [str(response_of(exc).get("Error", {}).get("Message", ""))]
    texts += [str(r.get("Message", "")) for r in response_of(exc).get("CancellationReasons") or []]
    signs = ("overflow", "magnitude", "38 digits")
    return any(sign in text.lower() for text in texts for sign in signs)


def is_item_too_large(exc: BaseException) -> bool:
    """True when DynamoDB refused a write because the item would pass 400 KB."""
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    texts = []
    if code == "ValidationException":
        texts.append(str(response_of(exc).get("Error", {}).get("Message", "")))
    if code == "TransactionCanceledException":
        reasons = response_of(exc).get("CancellationReasons") or []
        texts += [str(r.get("Message", "")) for r in reasons if r.get("Code") == "ValidationError"]
    return any("item size" in text.lower() for text in texts)


def was_not_applied(exc: BaseException) -> bool:
    """True for a failure DynamoDB documents as "nothing was applied" (a throttle, a conflict,
    a not-applied cancellation), or one that sent nothing (a connect timeout): a re-send after
    it is no ambiguity."""
    if isinstance(exc, _NOT_SENT_ERRORS):
        return True
    return error_code(exc) in _NOT_APPLIED_CODES or is_not_applied_cancellation(exc)


def resend_ambiguity(
    retries: int, retried: Sequence[BaseException]
) -> tuple[bool, BaseException | None]:
    """A write that botocore sent again ``retries`` times, meeting the failures ``retried`` (in
    order): may an earlier send have landed (its answer unseen)? And the first failure that
    says so (None when botocore's capture did not report it). Not when every failure it
    retried is documented as not applied (:func:`was_not_applied`)."""
    seen = retried[:retries]
    if len(seen) < retries:
        return True, (seen[0] if seen else None)
    failure = next((failure for failure in seen if not was_not_applied(failure)), None)
    return failure is not None, failure


def classify(exc: BaseException) -> Outcome:
    """The row of the module's table that ``exc`` falls in."""
    # Not-applied cancellations first: their reasons say exactly what happened.
    if is_throttled_cancellation(exc):
        return Outcome.THROTTLED_TRANSACTION
    if is_conflict(exc):
        return Outcome.CONFLICT
    if is_item_too_large(exc):
        return Outcome.ITEM_TOO_LARGE
    if is_overflow(exc):
        return Outcome.OVERFLOW
    if _CHECK_FAILED in (cancellation_codes(exc) or []):
        return Outcome.CONDITION_FAILED
    if isinstance(exc, (EndpointConnectionError, *_NOT_SENT_ERRORS)):
        return Outcome.UNREACHABLE
    if is_ambiguous(exc):
        return Outcome.AMBIGUOUS
    if error_code(exc) in _THROTTLE_CODES:
        return Outcome.THROTTLED_REQUEST
    return Outcome.OTHER


def backoff(attempt: int, base: float) -> float:
    """The pause before try ``attempt + 1``, in seconds: full jitter (uniform from 0) under a
    cap that doubles from ``2 x base`` per try, at most :data:`BACKOFF_CAP`. Full jitter spreads
    colliding writers apart instead of re-colliding in lockstep; 0 when ``base`` is 0 (tests)."""
    if not base:
        return 0.0
    return random.uniform(0, min(BACKOFF_CAP, base * 2 ** min(attempt, 10)))


def give_up(exc: BaseException | None, *, counter: str, tries: int) -> NoReturn:
    """The end of a run of not-applied tries: DynamoDB's own error when the last one was a
    transaction cancelled with a throttle among its reasons (unchanged, as botocore re-raises a
    single request's throttle), else
    :class:`ContentionError` (conflicts, optimistic collisions, stale snapshots)."""
    if exc is not None and THROTTLE_REASONS & set(cancellation_codes(exc) or []):
        raise exc
    raise ContentionError(
        f"counter {counter!r}: gave up after {tries} attempts lost to concurrent writers"
    ) from exc


def reasons_of(exc: ClientError) -> list[dict[str, Any]]:
    """The cancellation reasons of a cancelled transaction, as plain dicts (none otherwise)."""
    return [dict(r) for r in response_of(exc).get("CancellationReasons") or []]
