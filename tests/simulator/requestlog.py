"""The request log: what every simulated cloud was asked, and what it answered.

Tests assert rate budgets, retry behaviour and "no request was made" from this
log, so every request is recorded with its final status, including the ones
answered by a fault, a 401 or a 429. Secrets never enter the log.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

SECRET_KEYS = frozenset({"password", "client_secret"})
MASK = "***"

# Set on the request by the app (arrival) and by the cloud that attributed it.
ARRIVAL = web.RequestKey("simulator_arrival", float)
ACCOUNT = web.RequestKey("simulator_account", str)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the simulator saw it.

    ``at`` is ``time.monotonic()`` at arrival (for spacing assertions), ``wall``
    the simulator clock at arrival, ``path`` the path below the cloud prefix
    (the full path when no cloud matched, with ``cloud`` None), ``account`` the
    user the request is attributed to (None when it could not be attributed).
    """

    at: float
    wall: datetime
    cloud: str | None
    method: str
    path: str
    query: dict[str, str]
    body: Any
    account: str | None
    status: int


def mask_secrets(body: Any) -> Any:
    """Return ``body`` with every secret value replaced by ``***`` (recursively).

    The log is printed by failing tests and by the standalone server, so a
    password must not survive into it even by accident.
    """
    if isinstance(body, dict):
        return {
            key: MASK if key in SECRET_KEYS else mask_secrets(value)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [mask_secrets(item) for item in body]
    return body
