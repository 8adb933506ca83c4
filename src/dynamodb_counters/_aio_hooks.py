"""``before-send`` hooks on an aiobotocore client: the async side of :mod:`.faults` and of the
tests' hooks.

aiobotocore's endpoint emits ``before-send`` in the task that sends the request, awaits what a
handler returns when it is awaitable, and uses a non-None answer as the HTTP response, whose
``content`` it awaits (an ``AioAWSResponse``); an exception raised by a handler is treated as a
network error (retried by its retry handler). So one hook written for botocore serves both:
its synthetic answers are wrapped here, and what it must not do on the event loop (a blocking
send) runs in a worker thread.

aiobotocore is imported only when an async client is there, so the sync package never loads it.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, cast

from botocore.exceptions import ReadTimeoutError

# botocore.awsrequest brings urllib3 and http.client (half of `import dynamodb_counters`'s time):
# imported where a synthetic answer is wrapped, not by the store that only asks is_async_client.

Hook = Callable[..., Any]
AsyncHook = Callable[..., Coroutine[Any, Any, Any]]


def is_async_client(client: Any) -> bool:
    """Whether ``client`` is an aiobotocore client (never imports aiobotocore to tell)."""
    aio = sys.modules.get("aiobotocore.client")
    return aio is not None and isinstance(client, aio.AioBaseClient)


def before_send_handler(client: Any, hook: Hook, *, in_thread: bool = False) -> Hook:
    """``hook`` as ``client``'s ``before-send`` event wants it.

    For botocore, ``hook`` itself. For aiobotocore, a coroutine function that runs ``hook``
    (on the event loop, or in a worker thread when ``in_thread``: for hooks that block, e.g.
    by running other requests) and awaits what it returns if that is awaitable; a synthetic
    ``AWSResponse`` is given back as aiobotocore's awaitable kind.
    """
    if not is_async_client(client):
        return hook

    async def before_send(request: Any, **kwargs: Any) -> Any:
        if in_thread:
            import asyncio  # only for an async client: the sync package never loads asyncio

            answer = await asyncio.to_thread(hook, request, **kwargs)
        else:
            answer = hook(request, **kwargs)
        if inspect.isawaitable(answer):
            answer = await answer
        return as_aio_response(answer)

    return before_send


def as_aio_response(answer: Any) -> Any:
    """A botocore ``AWSResponse`` (a synthetic answer) as an ``AioAWSResponse``; else as is."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    if not isinstance(answer, AWSResponse) or inspect.isawaitable(answer.content):
        return answer
    from aiobotocore.awsrequest import AioAWSResponse

    headers = cast(HTTPHeaders, answer.headers)  # what botocore gives; the stubs say less
    return AioAWSResponse(answer.url, answer.status_code, headers, _Raw(answer.content))


class _Raw:
    """The minimal raw stream AioAWSResponse reads its content from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self) -> bytes:
        return self._data


async def lose_answer(http: Any, request: Any) -> NoReturn:
    """Send ``request`` for real with the blocking ``http`` session (in a worker thread, so the
    event loop goes on), then raise ``ReadTimeoutError``: an applied request whose answer was
    lost."""
    import asyncio

    await asyncio.to_thread(http.send, request)
    raise ReadTimeoutError(endpoint_url=request.url)
