"""Waiting for a condition: poll it until it holds, or fail naming what was awaited.

One loop for synchronous tests (`wait_for`) and one for asyncio code
(`wait_until`, whose predicate may also be a coroutine function). Both
return the first true result, so a wait can hand over what it found.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something true; return that, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition",
                     interval: float = 0.02) -> Any:
    """The same in asyncio: `predicate()` may return an awaitable, which is awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
