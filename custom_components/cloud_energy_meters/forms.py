"""Helpers of the forms the config flow and the subentry flows share."""

from typing import Any


def whole_number(value: Any) -> int | None:
    """Return a positive whole number typed in a text field; None if it is not one.

    Ids are asked in text fields: a number box would show its minimum as a value.
    """
    text = str(value).strip()
    return int(text) if text.isdecimal() and int(text) > 0 else None
