"""Home Assistant's validator (hassfest) rules for strings.json and icons.json.

Restated from script/hassfest/translations.py and icons.py of Home Assistant core, which
validate custom integrations too (hassfest with --integration-path, HACS's action):
which keys each part may hold, how free keys are spelled, and what a translated text may
contain. `problems()` returns every breach as "path: why", so a test lists them all. A
test runs the rules over every strings.json and hub icons.json core ships, so they are
hassfest's, not invented. Stricter where it costs nothing: a field's name (any string to
hassfest) gets the text rules, a section may describe only its own fields, and a
flow-level "title" (removed from core, a warning for custom integrations) is refused.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import re
import string
from typing import Any

from homeassistant.util import slugify

# A translation must not look like HTML (cv.string_with_no_html).
HTML = re.compile(r"<[a-z].*?>", re.IGNORECASE)
QUOTED_PLACEHOLDER = re.compile(r"'{\w+}'")
# "[%key:…%]" references stand alone: no text around them.
COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5):\/\/|www\.)"
    r"[a-z0-9]+([\-\.]{1}[a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(\/.*)?)",
    re.IGNORECASE,
)
TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")

type KeyRule = Callable[[str], bool]


def any_key(_key: str) -> bool:
    """Accept any key (hassfest's `str`)."""
    return True


def slug(key: str) -> bool:
    """Accept what cv.slug accepts: the key is its own slug."""
    return slugify(key) == key


def underscore_slug(key: str) -> bool:
    """Accept a slug, possibly after a leading underscore."""
    return slug(key.removeprefix("_"))


def slug_or_underscore(key: str) -> bool:
    """Accept a slug or "_" (a platform's or selector's default)."""
    return key == "_" or slug(key)


def number(key: str) -> bool:
    """Accept a number (a range's lower bound)."""
    try:
        float(key)
    except ValueError:
        return False
    return True


def translation_key(key: str) -> bool:
    """Accept [a-z0-9-_]+ not starting or ending with - or _, nor doubling them."""
    return TRANSLATION_KEY.match(key) is not None


def translation_key_or_underscore(key: str) -> bool:
    """Accept a translation key or "_"."""
    return key == "_" or translation_key(key)


@dataclass(frozen=True)
class Text:
    """A translated text; `placeholders` says whether {name} fields are allowed."""

    placeholders: bool = True


@dataclass(frozen=True)
class Icon:
    """An icon: mdi:name, no HTML."""


@dataclass(frozen=True)
class Fields:
    """A mapping with fixed keys, some required."""

    required: Mapping[str, Node] = field(default_factory=dict)
    optional: Mapping[str, Node] = field(default_factory=dict)


@dataclass(frozen=True)
class Keyed:
    """A mapping with free keys spelled by `key`, each holding a `value`."""

    value: Node
    key: KeyRule = any_key
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextOr:
    """A text (an older form) or a mapping following `node`."""

    node: Node


@dataclass(frozen=True)
class TextTree:
    """Texts nested at any depth under translation keys (a config panel's)."""


@dataclass(frozen=True)
class Checked:
    """A node with an extra rule over the whole value (it returns problems)."""

    node: Node
    check: Callable[[Any, str], list[str]]


type Node = Text | Icon | Fields | Keyed | TextOr | TextTree | Checked

TEXT = Text()
STATE = Text(placeholders=False)


def text_problems(value: Any, path: str, *, placeholders: bool = True) -> list[str]:
    """Return why `value` is not a valid translated text."""
    if not isinstance(value, str):
        return [f"{path}: not a string"]
    found: list[str] = []
    if HTML.search(value):
        found.append(f"{path}: looks like HTML: {value!r}")
    if QUOTED_PLACEHOLDER.search(value):
        found.append(f"{path}: placeholder in single quotes: {value!r}")
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(value) if name]
    except ValueError as err:
        found.append(f"{path}: malformed placeholder ({err}): {value!r}")
        names = []
    for name in names:
        if not placeholders:
            found.append(f"{path}: placeholders are not allowed here: {value!r}")
        elif not name.isidentifier():
            found.append(f"{path}: placeholder {{{name}}} is not an identifier")
    if COMBINED_REFERENCE.search(value):
        found.append(f"{path}: a reference combined with text: {value!r}")
    if value != value.strip():
        found.append(f"{path}: leading or trailing white space: {value!r}")
    if URL.search(value):
        found.append(f"{path}: a URL (use a placeholder): {value!r}")
    return found


def problems(value: Any, node: Node, path: str = "") -> list[str]:
    """Return every breach of `node`'s rules in `value`, as "path: why"."""
    match node:
        case Text(placeholders=allowed):
            return text_problems(value, path, placeholders=allowed)
        case Icon():
            found = text_problems(value, path, placeholders=False)
            if isinstance(value, str) and not value.startswith("mdi:"):
                found.append(f"{path}: an icon must start with mdi: ({value!r})")
            return found
        case Checked(node=inner, check=check):
            return problems(value, inner, path) + check(value, path)
        case TextOr(node=inner):
            return problems(value, TEXT if isinstance(value, str) else inner, path)
        case TextTree():
            branch = Keyed(TextOr(node), translation_key_or_underscore)
            return problems(value, TEXT if isinstance(value, str) else branch, path)
    if not isinstance(value, dict):
        return [f"{path}: not a mapping"]
    found = []
    if isinstance(node, Fields):
        allowed = {**node.required, **node.optional}
        found += [
            f"{path}.{key}: required" for key in node.required if key not in value
        ]
        for key, item in value.items():
            if key not in allowed:
                found.append(f"{path}.{key}: not a key hassfest allows here")
            else:
                found += problems(item, allowed[key], f"{path}.{key}")
        return found
    found += [f"{path}.{key}: required" for key in node.required if key not in value]
    for key, item in value.items():
        if not node.key(key):
            found.append(f"{path}.{key}: badly spelled key ({node.key.__name__})")
        found += problems(item, node.value, f"{path}.{key}")
    return found


def _described_fields(value: Any, path: str) -> list[str]:
    """Return descriptions of fields the step or section lacks (data_description ⊆ data)."""
    if not isinstance(value, dict) or not isinstance(
        descriptions := value.get("data_description"), dict
    ):
        return []
    data = value.get("data")
    names = set(data) if isinstance(data, dict) else set()
    return [
        f"{path}.data_description.{key}: describes a field not in data"
        for key in descriptions
        if key not in names
    ]


def _description_or_fix_flow(value: Any, path: str) -> list[str]:
    """Refuse an issue with both a description and a fix flow."""
    if isinstance(value, dict) and {"description", "fix_flow"} <= set(value):
        return [f"{path}: a description or a fix_flow, not both"]
    return []


_TEXTS = Keyed(TEXT)
_SECTION = Checked(
    Fields(
        optional={
            "data": _TEXTS,
            "data_description": _TEXTS,
            "description": TEXT,
            "name": TEXT,
        }
    ),
    _described_fields,
)
_STEP = Checked(
    Fields(
        optional={
            "title": TEXT,
            "description": TEXT,
            "data": _TEXTS,
            "data_description": _TEXTS,
            "menu_options": _TEXTS,
            "menu_option_descriptions": _TEXTS,
            "submit": TEXT,
            "sections": Keyed(_SECTION),
        }
    ),
    _described_fields,
)


def flow(*, subentry: bool = False) -> Fields:
    """Return the rules of a config, options, subentry or repair flow's texts."""
    optional: dict[str, Node] = {
        "flow_title": TEXT,
        "error": _TEXTS,
        "abort": _TEXTS,
        "progress": _TEXTS,
        "create_entry": _TEXTS,
    }
    required: dict[str, Node] = {"step": Keyed(_STEP)}
    if subentry:
        required["entry_type"] = TEXT
        required["initiate_flow"] = Keyed(TEXT, required=("user",))
    else:
        optional["initiate_flow"] = Fields(required={"user": TEXT})
    return Fields(required=required, optional=optional)


_FIELDS = Keyed(
    Fields(
        required={"name": TEXT, "description": TEXT},
        optional={"example": TEXT},
    ),
    translation_key,
)
_ACTIONS = Fields(
    required={"name": TEXT, "description": TEXT},
    optional={
        "fields": _FIELDS,
        "sections": Keyed(
            Fields(required={"name": TEXT}, optional={"description": TEXT}),
            translation_key,
        ),
    },
)
_TRIGGERS = Fields(
    required={"name": TEXT, "description": TEXT},
    optional={
        "fields": Keyed(
            Fields(required={"name": TEXT}, optional={"description": TEXT}),
            translation_key,
        )
    },
)
_STATES = Keyed(STATE, translation_key)
_LABELS = Keyed(TEXT, translation_key)

STRINGS = Fields(
    optional={
        "title": TEXT,
        "config": flow(),
        "config_subentries": Keyed(flow(subentry=True), slug_or_underscore),
        "options": flow(),
        "preview_features": Keyed(
            Fields(
                required={"name": TEXT, "description": TEXT},
                optional={"enable_confirmation": TEXT, "disable_confirmation": TEXT},
            ),
            translation_key,
        ),
        "selector": Keyed(
            Fields(
                optional={
                    "choices": _LABELS,
                    "options": _LABELS,
                    "unit_of_measurement": _LABELS,
                    "fields": Keyed(TextOr(_FIELDS.value), translation_key),
                }
            ),
            slug_or_underscore,
        ),
        "device_automation": Fields(
            optional=dict.fromkeys(
                (
                    "action_type",
                    "condition_type",
                    "trigger_type",
                    "trigger_subtype",
                    "extra_fields",
                    "extra_fields_descriptions",
                ),
                _TEXTS,
            )
        ),
        "system_health": Fields(optional={"info": _LABELS}),
        "application_credentials": Fields(optional={"description": TEXT}),
        "issues": Keyed(
            Checked(
                Fields(
                    required={"title": TEXT},
                    optional={
                        "short_title": TEXT,
                        "description": TEXT,
                        "fix_flow": flow(),
                    },
                ),
                _description_or_fix_flow,
            )
        ),
        "entity_component": Keyed(
            Fields(
                optional={
                    "name": TEXT,
                    "state": _STATES,
                    "state_attributes": Keyed(
                        Fields(optional={"name": TEXT, "state": _STATES}),
                        translation_key,
                    ),
                }
            ),
            slug_or_underscore,
        ),
        "device": Keyed(Fields(optional={"name": TEXT}), translation_key),
        "entity": Keyed(
            Keyed(
                Fields(
                    optional={
                        "name": TEXT,
                        "state": _STATES,
                        "state_attributes": Keyed(
                            Fields(optional={"name": STATE, "state": _STATES}),
                            translation_key,
                        ),
                        "unit_of_measurement": STATE,
                    }
                ),
                translation_key,
            ),
            slug,
        ),
        "exceptions": Keyed(Fields(optional={"message": TEXT}), slug),
        "services": Keyed(_ACTIONS, translation_key),
        "conditions": Keyed(_TRIGGERS, underscore_slug),
        "triggers": Keyed(_TRIGGERS, underscore_slug),
        "config_panel": TextTree(),
        "conversation": Fields(required={"agent": Fields(required={"done": TEXT})}),
        "common": Keyed(TEXT, slug),
    }
)

_ICON_STATES = Keyed(Icon(), translation_key)
_FLOW_ICONS = Fields(
    required={"step": Keyed(Fields(required={"sections": Keyed(Icon())}))}
)
ICONS = Fields(
    optional={
        "config": _FLOW_ICONS,
        "options": _FLOW_ICONS,
        "issues": Keyed(Fields(required={"fix_flow": _FLOW_ICONS})),
        "services": Keyed(
            Fields(optional={"service": Icon(), "sections": _ICON_STATES}),
            translation_key,
        ),
        "conditions": Keyed(Fields(required={"condition": Icon()}), underscore_slug),
        "triggers": Keyed(Fields(required={"trigger": Icon()}), underscore_slug),
        "entity": Keyed(
            Keyed(
                Fields(
                    optional={
                        "default": Icon(),
                        "state": _ICON_STATES,
                        "state_attributes": Keyed(
                            Fields(optional={"default": Icon(), "state": _ICON_STATES}),
                            translation_key,
                        ),
                        # Icons by value: the key is the lowest value of its range.
                        "range": Keyed(Icon(), number),
                    }
                ),
                translation_key,
            ),
            slug,
        ),
    }
)
"""The icons of a hub integration (no entity_component)."""
