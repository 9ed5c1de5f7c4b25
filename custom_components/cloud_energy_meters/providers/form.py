"""What a cloud asks the user for: its sign-in form, declared, drawn by the layer above.

Keys are the ones Home Assistant uses where it has one (`username`, `password`,
`client_id`, `client_secret`, `api_token`); a form's fields are the credentials the
provider is given.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    """One credential field."""

    key: str
    secret: bool = False
    """Shown as a password, and asked again on reauthentication."""
    required: bool = True
    number: bool = False
    """A positive whole number (an id), typed as text: an id has no default, and a
    number box would show its minimum as one."""
    asked: bool = True
    """Typed by the user; False: the cloud's own sign-in steps fill it (a refresh
    token a pasted code became), so reauthentication does not ask for it."""


@dataclass(frozen=True, slots=True)
class Setting:
    """A setting of the collapsed "Advanced" section, beside the API URL."""

    key: str
    default: str | int
    port: bool = False
    """A port number (1–65535) rather than text."""
    url: bool = False
    """An address credentials are sent to: checked as the API URL is (HTTPS)."""


@dataclass(frozen=True, slots=True)
class Form:
    """A cloud's sign-in form."""

    fields: tuple[Field, ...]
    paired: tuple[tuple[str, str], ...] = ()
    """Fields given together or not at all (a username and its password, say, where
    an API client may also sign in without a user)."""
    advanced: tuple[Setting, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """Return the credential keys, in the form's order."""
        return tuple(field.key for field in self.fields)

    @property
    def secrets(self) -> tuple[Field, ...]:
        """Return the fields asked again on reauthentication."""
        return tuple(field for field in self.fields if field.secret and field.asked)
