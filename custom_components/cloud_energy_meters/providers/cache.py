"""Answers kept while the cloud says they are fresh (Cache-Control: max-age).

Asking again for what is still fresh spends a request of the account's budget and
gets the same answer: a cloud that says how long an answer stays fresh is not asked
again before then.
"""

from collections import OrderedDict
from collections.abc import Callable
import re
import time
from typing import Any

MAX_ENTRIES = 512
"""Answers kept at most (the oldest go first)."""
MAX_AGE = 86400.0
"""The longest an answer is kept, whatever the cloud says."""

_MAX_AGE = re.compile(
    r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})\"?(?:$|[,\s])", re.IGNORECASE
)
_NO_STORE = re.compile(
    r"(?:^|[,\s])(?:no-store|no-cache|private)(?:$|[,\s=])", re.IGNORECASE
)


def max_age(header: str | None) -> float:
    """Return how long an answer stays fresh by its Cache-Control header (0: not)."""
    if not header or _NO_STORE.search(header):
        return 0.0
    if (found := _MAX_AGE.search(header)) is None:
        return 0.0
    return min(float(found.group(1)), MAX_AGE)


def _monotonic() -> float:
    return time.monotonic()


class ResponseCache:
    """Decoded answers by request, each until its max-age runs out."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        """Start empty (`clock`: monotonic seconds, looked up at each call)."""
        self._clock = clock or _monotonic
        self._answers: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.hits = 0

    def get(self, key: str) -> tuple[bool, Any]:
        """Return (True, answer) while a fresh one is kept, else (False, None)."""
        if (kept := self._answers.get(key)) is None:
            return False, None
        if kept[0] <= self._clock():
            del self._answers[key]
            return False, None
        self.hits += 1
        return True, kept[1]

    def put(self, key: str, answer: Any, cache_control: str | None) -> None:
        """Keep an answer for as long as its Cache-Control header allows."""
        if (fresh_for := max_age(cache_control)) <= 0:
            self._answers.pop(key, None)
            return
        self._answers[key] = (self._clock() + fresh_for, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > MAX_ENTRIES:
            self._answers.popitem(last=False)

    def clear(self) -> None:
        """Forget every answer (the account changed: a new token, a new listing)."""
        self._answers.clear()
