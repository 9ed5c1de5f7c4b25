"""What a hostile cloud does to an answer, as small data hypothesis can draw and shrink.

A mutation is a list of operations applied in order to the simulator's normal answer
(status, headers, body). Operations that edit the body address their target with a
path of integers taken modulo the size of each container as it is met, so they are
drawn without knowing the document and still land somewhere in it.
"""

from collections.abc import Callable
import copy
from dataclasses import dataclass, field
import json
import math
import reprlib
from typing import Any

from hypothesis import strategies as st

NAN = math.nan
INF = math.inf


@dataclass(frozen=True, slots=True)
class Long:
    """A long text, drawn and shown by its size (expanded when applied)."""

    char: str
    size: int

    def text(self) -> str:
        """Return the text itself."""
        return self.char * self.size


def _value(value: Any) -> Any:
    """Return a fresh copy of a drawn value (the pool's lists and dicts stay intact)."""
    return value.text() if isinstance(value, Long) else copy.deepcopy(value)


# Values swapped in for any JSON node: types, non-finite and extreme numbers, epochs of
# every unit and out of range, odd ISO timestamps and time zone names, long text.
JSON_VALUES: tuple[Any, ...] = (
    None,
    NAN,
    INF,
    -INF,
    -1,
    "",
    True,
    0,
    -0.5,
    1e308,
    -1e308,
    5e-324,
    10**30,
    10**400,
    "abc",
    "NaN",
    "Infinity",
    "-1",
    "1e309",
    [],
    {},
    [1],
    {"a": 1},
    1_767_225_600,
    1_767_225_600_000,
    1_767_225_600_000_000,
    1_767_225_600_000_000_000,
    -62_135_596_801,
    253_402_300_800,
    1e20,
    -1e20,
    {"$date": 1_767_225_600_000},
    {"$date": 1e20},
    {"$date": "garbage"},
    Long("A", 300),
    Long("x", 100_000),
    "2026-01-01T00:00:00",
    "2026-01-01T00:00:00Z",
    "2026-01-01 00:15:00+01:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-W01-1",
    "1767225600",
    "yesterday",
    "UTC",
    "Europe/Zurich",
    "Mars/Olympus",
    "../../../etc/passwd",
    "Europe/Zurich\x00",
    "Etc/GMT-14",
    "\ud800",
)

# Numbers a cell of a CSV row may become.
CSV_TOKENS: tuple[str, ...] = (
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "-5",
    "-0.001",
    "1e308",
    "1e309",
    "1e-320",
    "0",
    "abc",
    '"quoted"',
    '"unclosed',
    "1767225600",
    "1767225600000000",
    "1767225600000000000",
    "-62135596800001",
    "253402300800000",
    "99999999999999999999999",
    "1_000",
    " 12 ",
    "\uff11\uff12",
    "\ud800",
)

STATUSES: tuple[int, ...] = (
    500,
    429,
    200,
    204,
    0,
    99,
    101,
    201,
    206,
    299,
    300,
    301,
    302,
    304,
    307,
    400,
    401,
    403,
    404,
    405,
    409,
    410,
    413,
    418,
    422,
    451,
    499,
    502,
    503,
    504,
    599,
    600,
    999,
)
"""Statuses aiohttp lets a server send (0-999). 100-199 but 101 are left out: aiohttp
takes them as interim answers and waits for the real one, so they only measure the
transport's own timeout."""

RETRY_AFTERS: tuple[str | None, ...] = (
    None,
    "0",
    "inf",
    "-1",
    "1e308",
    "nan",
    "-inf",
    "0.01",
    "3601",
    "86400",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "garbage",
    "",
    "1, 2",
)

CONTENT_TYPES: tuple[str, ...] = (
    "text/html; charset=utf-8",
    "text/plain",
    "application/json",
    "text/csv",
    "application/octet-stream",
    "application/json; charset=latin-1",
)

ERROR_BODIES: tuple[bytes, ...] = (
    b'{"message": "nope"}',
    b'{"error": "invalid_grant"}',
    b'{"errors": ["a", 1]}',
    b'{"message": NaN}',
    b"<html><body>Bad Gateway</body></html>",
)

MAX_BODY = 32_000_000
"""The largest body an edit may make (the fuzz server builds it in memory)."""
DEPTH = 100_000
BODIES: dict[str, bytes] = {
    "empty": b"",
    "html": b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
    "text": b"Service temporarily unavailable",
    "non_utf8": b'\xff\xfe{"\x80": 1}',
    "csv_non_utf8": b"65603,1767225600000,\xff\xfe\x80\n",
    "utf16_json": '{"a": 1}'.encode("utf-16"),
    "deep_array": b"[" * DEPTH + b"]" * DEPTH,
    "deep_object": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "deep_unclosed": b"[" * DEPTH,
    "nan": b"NaN",
    "infinity": b"-Infinity",
    "huge_float": b"1e999",
    "huge_int": b"1" * 5000,
    "null": b"null",
    "true": b"true",
    "string": b'"a string"',
    "empty_list": b"[]",
    "empty_object": b"{}",
    "zeros": b"[" + b"0," * 200_000 + b"0]",
    "long_line": b"1" * 300_000,
}
"""Whole bodies a proxy, a crashed backend or a hostile server sends instead."""


@dataclass(slots=True)
class Answer:
    """An answer on its way out of the fuzz server."""

    status: int
    headers: dict[str, str]
    body: bytes
    drop_after: int | None = None
    """Close the connection after this many bytes of a body announced whole."""
    notes: list[str] = field(default_factory=list)


class Op:
    """One change to an answer."""

    def apply(self, answer: Answer) -> None:
        """Change the answer in place."""
        raise NotImplementedError


class _TooLarge(Exception):
    """An edit would make a body larger than MAX_BODY."""


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")


def _locate(doc: Any, path: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """Return (parent, key, node) at `path`, each step modulo the container's size."""
    parent: Any = None
    key: Any = None
    node = doc
    for step in path:
        if isinstance(node, dict) and node:
            next_key: Any = list(node)[step % len(node)]
        elif isinstance(node, list) and node:
            next_key = step % len(node)
        else:
            break
        parent, key, node = node, next_key, node[next_key]
    return parent, key, node


def _where(doc: Any, path: tuple[int, ...]) -> str:
    """Name the node at `path` as a JSON path ($.sites[0].id)."""
    text = "$"
    node = doc
    for step in path:
        if isinstance(node, dict) and node:
            key = list(node)[step % len(node)]
            text += f".{key}"
        elif isinstance(node, list) and node:
            key = step % len(node)
            text += f"[{key}]"
        else:
            break
        node = node[key]
    return text


_brief = reprlib.Repr(maxstring=50, maxother=50, maxlist=3, maxdict=3, maxlevel=2)


def _nearest_list(doc: Any, path: tuple[int, ...]) -> tuple[list[Any] | None, int]:
    """Return the list at `path` (index 0) or the list holding the node there."""
    parent, key, node = _locate(doc, path)
    if isinstance(node, list):
        return node, path[-1] if path else 0
    if isinstance(parent, list):
        return parent, key
    return None, 0


def _number_change(how: str, value: Any) -> Any:
    """Scale, negate or break a number; other values pass unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    changes: dict[str, Callable[[Any], Any]] = {
        "negate": lambda v: -v if v else -1,
        "x1e3": lambda v: v * 1000,
        "x1e6": lambda v: v * 1_000_000,
        "x1e9": lambda v: v * 1_000_000_000,
        "div1e3": lambda v: v / 1000,
        "str": str,
        "huge_int": lambda v: 10**400,
        "tiny": lambda v: 5e-324,
    }
    return changes[how](value)


NUMBER_CHANGES = ("negate", "x1e3", "x1e6", "x1e9", "div1e3", "str", "huge_int", "tiny")


@dataclass(frozen=True, slots=True)
class JsonEdit(Op):
    """Edit the JSON document at `path`: set, delete, add a key, repeat, reorder."""

    op: str
    path: tuple[int, ...] = ()
    value: Any = None
    count: int = 1

    def apply(self, answer: Answer) -> None:
        """Edit the body if it is JSON; leave any other body alone."""
        try:
            doc = json.loads(answer.body)
        except ValueError, RecursionError:
            return
        where = _where(doc, self.path)
        try:
            body = _dump(self.edit(doc))
        except _TooLarge:
            body = b"x" * (MAX_BODY + 1)  # reported as skipped below, never sent
        if len(body) > MAX_BODY:  # repeating a long text thousands of times
            answer.notes.append(f"{self.op} {where} (skipped: over {MAX_BODY} B)")
            return
        answer.body = body
        shown = "" if self.value is None else f" {_brief.repr(self.value)}"
        count = f" x{self.count}" if self.op in ("repeat", "add") else ""
        answer.notes.append(f"{self.op} {where}{shown}{count}")

    def edit(self, doc: Any) -> Any:
        """Return the edited document (the root itself may be replaced)."""
        parent, key, node = _locate(doc, self.path)
        match self.op:
            case "set" | "number":
                new = (
                    _value(self.value)
                    if self.op == "set"
                    else _number_change(str(self.value), node)
                )
                if parent is None:
                    return new
                parent[key] = new
            case "delete":
                if parent is not None:
                    del parent[key]
            case "add":
                if isinstance(node, dict):
                    node[f"extra_{self.count}"] = _value(self.value)
                elif isinstance(node, list):
                    node.append(_value(self.value))
            case "repeat":
                items, index = _nearest_list(doc, self.path)
                if items:
                    item = items[index % len(items)]
                    # Measured before it is built: a year of points repeated 3,000
                    # times would be gigabytes of text (it filled 24 GB once).
                    if len(_dump(item)) * self.count > MAX_BODY:
                        raise _TooLarge
                    items[index:index] = [item] * self.count
            case "reverse":
                items, _ = _nearest_list(doc, self.path)
                if items:
                    items.reverse()
            case "rotate":
                items, index = _nearest_list(doc, self.path)
                if items:
                    cut = (index + 1) % len(items)
                    items[:] = items[cut:] + items[:cut]
            case "ids":
                # Objects become their first value: older servers list bare ids.
                items, _ = _nearest_list(doc, self.path)
                if items:
                    items[:] = [
                        next(iter(item.values()), None)
                        if isinstance(item, dict)
                        else item
                        for item in items
                    ]
            case "wrap":
                if parent is None:
                    return [node]
                parent[key] = [node]
        return doc


@dataclass(frozen=True, slots=True)
class CsvEdit(Op):
    """Edit a headerless CSV body (`id,epoch_ms,value` rows) at row `row`."""

    op: str
    row: int = 0
    column: int = 0
    token: str = ""
    count: int = 1

    def apply(self, answer: Answer) -> None:
        """Edit the rows; a body without rows gets one to edit."""
        text = answer.body.decode("utf-8", "surrogatepass")
        lines = text.splitlines() or ["65603,1767225600000,1.0"]
        index = self.row % len(lines)
        match self.op:
            case "set":
                cells = lines[index].split(",")
                cells[self.column % len(cells)] = self.token
                lines[index] = ",".join(cells)
            case "repeat":
                lines[index:index] = [lines[index]] * self.count
            case "delete":
                del lines[index]
            case "reverse":
                lines.reverse()
            case "rotate":
                lines[:] = lines[index + 1 :] + lines[: index + 1]
            case "swap":
                other = (index + 1) % len(lines)
                lines[index], lines[other] = lines[other], lines[index]
            case "extra_column":
                lines[index] += f",{self.token}"
            case "blank":
                lines.insert(index, " " * self.count)
        ending = "\r\n" if self.count == 2 else "\n"
        answer.body = (ending.join(lines) + ending).encode("utf-8", "surrogatepass")
        shown = lines[index % len(lines)] if lines else ""
        answer.notes.append(
            f"csv {self.op} row {index} x{self.count}: {_brief.repr(shown)}"
        )


@dataclass(frozen=True, slots=True)
class SetStatus(Op):
    """Answer with another status, a Retry-After, and the body kept or replaced."""

    status: int
    retry_after: str | None = None
    body: bytes | None = None

    def apply(self, answer: Answer) -> None:
        """Replace the status (and the body when one is given)."""
        answer.status = self.status
        if self.retry_after is not None:
            answer.headers["Retry-After"] = self.retry_after
        if self.body is not None:
            answer.body = self.body


@dataclass(frozen=True, slots=True)
class SetContentType(Op):
    """Label the body with another content type."""

    content_type: str

    def apply(self, answer: Answer) -> None:
        """Replace the Content-Type header."""
        answer.headers["Content-Type"] = self.content_type


@dataclass(frozen=True, slots=True)
class ReplaceBody(Op):
    """Send one of BODIES instead of the answer's body."""

    name: str

    def apply(self, answer: Answer) -> None:
        """Replace the body."""
        answer.body = BODIES[self.name]


@dataclass(frozen=True, slots=True)
class Pad(Op):
    """Make the body very large: whitespace before it (still valid JSON) or rows."""

    megabytes: int

    def apply(self, answer: Answer) -> None:
        """Prefix spaces (JSON) or repeat the whole body (CSV, at most 1 MB)."""
        size = self.megabytes * 1_000_000
        if answer.body[:1] in (b"[", b"{"):
            answer.body = b" " * size + answer.body
        elif answer.body:
            # Rows are parsed one by one: 1 MB of them is already 30,000 rows.
            answer.body *= max(1, min(size, 1_000_000) // len(answer.body))


@dataclass(frozen=True, slots=True)
class Truncate(Op):
    """Cut the body short (a complete answer of fewer bytes)."""

    fraction: float

    def apply(self, answer: Answer) -> None:
        """Keep the first `fraction` of the body."""
        answer.body = answer.body[: int(len(answer.body) * self.fraction)]


@dataclass(frozen=True, slots=True)
class Drop(Op):
    """Announce the whole body, send part of it, and close the connection."""

    fraction: float

    def apply(self, answer: Answer) -> None:
        """Mark where the connection breaks off."""
        answer.drop_after = int(len(answer.body) * self.fraction)


@dataclass(frozen=True, slots=True)
class Mutation:
    """What the fuzz server does to every answer of the target path in one call."""

    ops: tuple[Op, ...]
    first_only: bool = False
    """Only the first matching request is mutated (a retry then gets the truth)."""

    def apply(self, answer: Answer) -> Answer:
        """Return the answer with every operation applied in order."""
        for op in self.ops:
            op.apply(answer)
            if not isinstance(op, JsonEdit | CsvEdit):
                answer.notes.append(_brief.repr(op))
        return answer


_paths = st.lists(st.integers(0, 40), min_size=1, max_size=5).map(tuple)
"""Where an edit lands: never the root itself (ReplaceBody and SetStatus do that)."""
_counts = st.sampled_from((1, 2, 5, 3000))

json_edits = st.one_of(
    st.builds(JsonEdit, st.just("set"), _paths, st.sampled_from(JSON_VALUES)),
    st.builds(JsonEdit, st.just("delete"), _paths),
    st.builds(JsonEdit, st.just("number"), _paths, st.sampled_from(NUMBER_CHANGES)),
    st.builds(JsonEdit, st.just("repeat"), _paths, st.none(), _counts),
    st.builds(
        JsonEdit,
        st.sampled_from(("reverse", "rotate", "wrap", "ids")),
        _paths,
        st.none(),
    ),
    st.builds(JsonEdit, st.just("add"), _paths, st.sampled_from(JSON_VALUES), _counts),
)

csv_edits = st.one_of(
    st.builds(
        CsvEdit,
        st.just("set"),
        st.integers(0, 3000),
        st.integers(0, 2),
        st.sampled_from(CSV_TOKENS),
    ),
    st.builds(
        CsvEdit,
        st.sampled_from(("repeat", "delete", "reverse", "rotate", "swap", "blank")),
        st.integers(0, 3000),
        st.just(0),
        st.just(""),
        _counts,
    ),
    st.builds(
        CsvEdit,
        st.just("extra_column"),
        st.integers(0, 3000),
        st.just(0),
        st.sampled_from(CSV_TOKENS),
    ),
)

transport_ops = st.one_of(
    st.builds(
        SetStatus,
        st.sampled_from(STATUSES),
        st.sampled_from(RETRY_AFTERS),
        st.one_of(st.none(), st.sampled_from(ERROR_BODIES)),
    ),
    st.builds(SetContentType, st.sampled_from(CONTENT_TYPES)),
    st.builds(ReplaceBody, st.sampled_from(sorted(BODIES))),
    st.builds(Truncate, st.sampled_from((0.0, 0.1, 0.5, 0.9, 0.999))),
    st.builds(Drop, st.sampled_from((0.0, 0.5, 0.999))),
    st.builds(Pad, st.sampled_from((1, 8))),
)


def _combine(edits: list[Op], transport: tuple[Op, ...], first_only: bool) -> Mutation:
    return Mutation((*edits, *transport), first_only)


def mutations(body: str) -> st.SearchStrategy[Mutation]:
    """Return mutations of answers whose body is `json` or `csv`.

    One to four edits of the body, and in about a third of the examples one change of
    the status, headers or bytes on top (they shrink away first).
    """
    edits = csv_edits if body == "csv" else json_edits
    transport = st.one_of(st.just(()), st.just(()), transport_ops.map(lambda op: (op,)))
    return st.builds(
        _combine, st.lists(edits, min_size=1, max_size=4), transport, st.booleans()
    )


CLASSICS: tuple[Mutation, ...] = (
    Mutation((ReplaceBody("deep_array"),)),
    Mutation((JsonEdit("ids", (0,)), JsonEdit("repeat", (0,), None, 3000))),
    Mutation((JsonEdit("set", (0, 0), NAN),)),
    Mutation((JsonEdit("set", (1, 0), INF),)),
    Mutation((JsonEdit("number", (0, 1), "negate"),)),
    Mutation((JsonEdit("repeat", (0,), None, 2),)),
    Mutation((SetStatus(429, "inf"),)),
    Mutation((SetStatus(429, "1e308"),)),
    Mutation((ReplaceBody("html"), SetContentType("text/html; charset=utf-8"))),
    Mutation((ReplaceBody("non_utf8"),)),
    Mutation((CsvEdit("set", 0, 2, "nan"),)),
    Mutation((CsvEdit("set", 1, 2, "-5"),)),
    Mutation((CsvEdit("reverse"),)),
    Mutation((CsvEdit("set", 0, 1, "1767225600000000"),)),
)
"""Answers every endpoint gets first, whatever the budget (hypothesis's explicit
examples): the classes the issue reports, so the suite's share never misses them."""
