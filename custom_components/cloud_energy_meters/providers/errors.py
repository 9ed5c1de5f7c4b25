"""Errors a cloud can cause, in terms the layer above can act on.

Messages are written for people and never carry a password, a token or a response body
that could echo one: they are logged and shown in the UI as they are.
"""


class ProviderError(Exception):
    """Something went wrong talking to a cloud."""


class AuthError(ProviderError):
    """The cloud rejected the credentials: only the user can fix this (reauth)."""


class CannotConnect(ProviderError):
    """The cloud could not be reached, timed out or failed on its side (5xx)."""


class UnsupportedServer(ProviderError):
    """The server answers, but speaks no API version this integration does."""


class RateLimited(ProviderError):
    """The cloud (or our own budget for it) asks us to wait before the next request."""

    def __init__(self, message: str, retry_after: float) -> None:
        """Keep how long to wait, in seconds."""
        super().__init__(message)
        self.retry_after = retry_after


class RequestRejected(ProviderError):
    """The cloud refused this request (4xx other than auth and rate limits).

    Distinct from InvalidResponse because the cure differs: a refused history span can be
    asked again in smaller pieces, a malformed answer cannot.
    """

    def __init__(self, message: str, status: int, detail: str = "") -> None:
        """Keep the HTTP status and the cloud's own short message (an error code)."""
        super().__init__(message)
        self.status = status
        self.detail = detail


class InvalidResponse(ProviderError):
    """The cloud answered, but not with what its API document promises."""


class PublishRefused(ProviderError):
    """A broker did not acknowledge a published message: refused, or lost with the link."""
