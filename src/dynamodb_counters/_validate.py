"""Input validation shared by every public entry point (SPEC section 6)."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from .errors import InvalidInput

MAX_NAME_BYTES = 1024
MAX_REQUEST_ID_CHARS = 255
# DynamoDB numbers carry up to 38 significant digits.
MAX_ABS_NUMBER = 10**38 - 1


def check_name(name: Any, *, what: str = "counter name") -> str:
    if not isinstance(name, str):
        raise InvalidInput(f"{what} must be a str, not {type(name).__name__}")
    size = len(name.encode("utf-8", errors="surrogatepass"))
    if size == 0:
        raise InvalidInput(f"{what} must not be empty")
    if size > MAX_NAME_BYTES:
        raise InvalidInput(f"{what} is {size} UTF-8 bytes; at most {MAX_NAME_BYTES} allowed")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode text: {exc}") from exc
    return name


def check_int(value: Any, *, what: str, nonzero: bool = False) -> int:
    # bool is an int subclass, but True as an amount is always a bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an int, not {type(value).__name__}")
    # An int subclass may print or compare otherwise than its value: use the plain int.
    plain: int = int.__int__(value)
    if nonzero and plain == 0:
        raise InvalidInput(f"{what} must not be zero")
    if abs(plain) > MAX_ABS_NUMBER:
        raise InvalidInput(f"{what} has more than 38 digits, DynamoDB's limit for numbers")
    return plain


def check_amount(amount: Any) -> int:
    if type(amount) is int and 0 < abs(amount) <= MAX_ABS_NUMBER:
        return amount  # the usual case, decided in one step
    return check_int(amount, what="amount", nonzero=True)


def check_optional_bound(value: Any, *, what: str) -> int | None:
    if value is None:
        return None
    return check_int(value, what=what)


def check_request_id(request_id: Any, *, what: str = "request_id") -> str:
    if not isinstance(request_id, str):
        raise InvalidInput(f"{what} must be a str, not {type(request_id).__name__}")
    if not 1 <= len(request_id) <= MAX_REQUEST_ID_CHARS:
        raise InvalidInput(
            f"{what} must be 1 to {MAX_REQUEST_ID_CHARS} characters, got {len(request_id)}"
        )
    try:
        request_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode text: {exc}") from exc
    return request_id


def check_bounds(floor: int | None, ceiling: int | None) -> None:
    if floor is not None and ceiling is not None and floor > ceiling:
        raise InvalidInput(f"floor {floor} is above ceiling {ceiling}")


def check_within(value: int, floor: int | None, ceiling: int | None, *, what: str) -> None:
    if floor is not None and value < floor:
        raise InvalidInput(f"{what} {value} is below the floor {floor}")
    if ceiling is not None and value > ceiling:
        raise InvalidInput(f"{what} {value} is above the ceiling {ceiling}")


def check_positive_int(
    value: Any, *, what: str, maximum: int | None = None, minimum: int = 1
) -> int:
    checked = check_int(value, what=what)
    if checked < minimum:
        raise InvalidInput(f"{what} must be at least {minimum}, got {checked}")
    if maximum is not None and checked > maximum:
        raise InvalidInput(f"{what} must be at most {maximum}, got {checked}")
    return checked


def check_duration(value: Any, *, what: str, allow_zero: bool = False) -> timedelta:
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a timedelta or seconds, not bool")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInput(f"{what} must be a finite number of seconds")
        try:
            value = timedelta(seconds=value)
        except OverflowError:
            raise InvalidInput(f"{what} is too long") from None
    if not isinstance(value, timedelta):
        raise InvalidInput(f"{what} must be a timedelta or seconds, not {type(value).__name__}")
    if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
        raise InvalidInput(f"{what} must be {'0 or more' if allow_zero else 'positive'}")
    return value


_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """Seconds in a duration as the command line writes it: ``90`` or ``1.5`` (seconds),
    ``30s``, ``10m``, ``1h``, ``7d``; the one syntax of every duration flag (and of what
    ``advise`` prints, e.g. ``marker_ttl=1h``).

    Raises:
        InvalidInput: anything else (also a ``ValueError``, so argparse says "invalid duration").
    """
    found = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise InvalidInput(f"not a duration: {text!r} (seconds, or e.g. 30s, 10m, 1h, 7d)")
    seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2).lower()]
    if not math.isfinite(seconds):
        raise InvalidInput(f"duration {text!r} is too long")
    return seconds


def check_attribute_name(value: Any, *, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty str")
    if len(value.encode("utf-8")) > 255:
        raise InvalidInput(f"{what} is longer than DynamoDB's 255 bytes for a key attribute name")
    return value
