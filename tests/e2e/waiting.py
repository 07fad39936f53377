"""What the tests that drive servers and processes share: polling until something is true."""

import time


def wait_until(predicate, timeout: float, what: str):
    """`predicate()`'s first truthy value within `timeout` seconds (polled every 0.25 s)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
