"""Energydata.dk's values answer: headerless CSV `id,epoch_ms,value`, read fast and checked.

A year of minute data is half a million rows, so the answer is read in chunks as it
arrives, cut into many lines at a time and parsed by one `csv.reader` per chunk; a
chunk with a quote in it (a text value) or an overlong line takes a slower path, line
by line, that keeps RFC 4180 quoting (a quoted value may span lines, up to MAX_RECORD
characters). Every row is checked: a known timestamp, a finite value of a magnitude a
meter can produce. A row that fails is refused and counted by reason, never fatal.

History rows are held per answer (`Piece`, compact arrays) and put in time order
before they become intervals: the API does not promise sorted rows.
"""

from array import array
from collections.abc import Iterable, Iterator
import csv
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
import math
import operator
import re
from typing import Final

from .parse import EARLIEST, LATEST, MAX_MAGNITUDE

MAX_RECORD: Final = 65_536
"""Characters a CSV record may span (a quoted value may hold line breaks); a longer
record is one unreadable row."""
MAX_VALUE: Final = MAX_MAGNITUDE
"""Largest magnitude a number may have (the shared parsers' bound): below it a double
still holds a register's three decimals exactly. A larger number is out of range."""
# Epoch milliseconds of the moments a reading may have (the shared parsers' years).
MIN_MS: Final = int(EARLIEST.timestamp() * 1000)
MAX_MS: Final = int(LATEST.timestamp() * 1000) - 1

# Why a row is refused (the warning names each with its count).
NOT_CSV: Final = "not id,timestamp,value"
NOT_FINITE: Final = "not finite"
OUT_OF_RANGE: Final = "out of range"

# A record whose value opens a quote: `id,epoch_ms,"…`.
_QUOTED_VALUE = re.compile(r'[^,"]*,[^,"]*,"')
# The decimals of a number: its point and the digits after it.
_FRACTION = re.compile(r"\.\d*")
# Bytes an unfinished line may take before it is given up (4 per character at most).
_MAX_TAIL = 4 * MAX_RECORD
# Values below 10¹⁴⁻ᵏ written with k decimals have at most 14 significant digits.
_PLAIN = tuple(10.0 ** (14 - k) for k in range(15))

type Tally = dict[str, int]
type Fields = list[str]


@dataclass(slots=True)
class Row:
    """One parsed CSV record."""

    stream: int
    epoch_ms: int
    value: float | str
    text: str = ""
    """The value as written (what a text datastream shows)."""


def refuse(tally: Tally, reason: str, count: int = 1) -> None:
    """Count refused rows by reason."""
    tally[reason] = tally.get(reason, 0) + count


def check(fields: Fields) -> Row | str | None:
    """Return the record as a row, why it is refused, or None for a blank line."""
    if len(fields) != 3:
        blank = not fields or (len(fields) == 1 and not fields[0].strip())
        return None if blank else NOT_CSV
    stream, stamp, text = fields
    try:
        row = Row(int(stream), int(stamp), text, text)
    except ValueError:
        return NOT_CSV
    if not MIN_MS <= row.epoch_ms <= MAX_MS:
        return OUT_OF_RANGE
    try:
        value = float(text)
    except ValueError:
        return row  # text (a string datastream)
    if -MAX_VALUE < value < MAX_VALUE:  # False for NaN too
        row.value = value
        return row
    return OUT_OF_RANGE if math.isfinite(value) else NOT_FINITE


def parse_line(line: str) -> Row | None:
    """Parse `id,epoch_ms,value`; None for a line that is not one (or is refused)."""
    try:
        row = check(next(csv.reader([line])))
    except csv.Error:
        return None
    return row if isinstance(row, Row) else None


def difference(before: float, after: float, places: int) -> float:
    """Return after − before exactly as the decimals they were written as.

    A float subtraction is off by a few units in the last place (0.3 − 0.1 is
    0.19999999999999998). The exact difference has at most `places` decimals (the
    larger count of the two; -1: unknown). With at most 14 significant digits each
    value is exactly its decimal text, and the float result lies within
    3·2⁻⁵³·(|before| + |after|) < 0.04·10⁻ᵖˡᵃᶜᵉˢ of the exact one: rounding it to
    `places` gives the double nearest the exact difference, as Decimal does (the
    tests check both agree). Other values take Decimal.
    """
    if exact_by_rounding(min(before, after), max(before, after), places):
        return round(after - before, places)
    return float(Decimal(repr(after)) - Decimal(repr(before)))


def exact_by_rounding(low: float, high: float, places: int) -> bool:
    """Tell whether differences of values in [low, high] round exactly (difference)."""
    return 0 <= places < len(_PLAIN) and 2 * max(-low, high) < _PLAIN[places]


class Records:
    """Cut a streamed answer into CSV records, many lines per chunk.

    Bytes are cut at the last line break that has arrived (a UTF-8 sequence never
    holds a line-break byte); the rest waits for the next chunk. A chunk without
    quotes or overlong lines is handed to one csv.reader as it is; otherwise it is
    cut record by record: a value opening a quote continues on the next lines until
    it closes, for at most MAX_RECORD characters, and a longer record, or a quote
    still open at the end, is one unreadable row. Blank lines are no row.
    """

    __slots__ = ("_overlong", "_pending", "_tail", "tally")

    def __init__(self, tally: Tally) -> None:
        """Start an answer; unreadable records are counted in `tally`."""
        self.tally = tally
        self._tail = b""
        self._pending = ""
        self._overlong = False

    def feed(self, chunk: bytes) -> list[Fields]:
        """Return the fields of the complete records in the answer so far."""
        data = self._tail + chunk if self._tail else chunk
        if self._overlong:  # dropping the rest of a line too long to hold
            cut = data.find(b"\n")
            if cut < 0:
                self._tail = b""
                return []
            self._overlong = False
            refuse(self.tally, NOT_CSV)
            data = data[cut + 1 :]
        cut = data.rfind(b"\n")
        self._tail = data[cut + 1 :]
        if len(self._tail) > _MAX_TAIL:
            self._tail = b""
            self._overlong = True
        if cut < 0:
            return []
        text = data[: cut + 1].decode("utf-8", "replace")
        lines = text.split("\n")
        lines.pop()  # after the last line break
        if (
            not self._pending
            and '"' not in text
            and (len(text) <= MAX_RECORD or max(map(len, lines)) <= MAX_RECORD)
        ):
            try:
                return list(csv.reader(lines))
            except csv.Error:  # again line by line, counting what fails
                return list(self._reader(lines))
        return list(self._slow(lines, final=False))

    def finish(self) -> list[Fields]:
        """Return the fields of the last record (no line break after it)."""
        if self._overlong:
            refuse(self.tally, NOT_CSV)
        tail, self._tail, self._overlong = self._tail, b"", False
        lines = [tail.decode("utf-8", "replace")] if tail else []
        fields = list(self._slow(lines, final=True))
        if self._pending:  # a quote never closed
            self._pending = ""
            refuse(self.tally, NOT_CSV)
        return fields

    def _reader(self, lines: Iterable[str]) -> Iterator[Fields]:
        """Parse many lines with one reader; a line it cannot parse is counted."""
        reader = csv.reader(lines)
        while True:
            try:
                yield from reader
            except csv.Error:
                refuse(self.tally, NOT_CSV)
            else:
                return

    def _slow(self, lines: list[str], *, final: bool) -> Iterator[Fields]:
        """Cut lines into records one by one (quotes, overlong lines)."""
        for line in lines:
            text = self._pending + line + ("" if final else "\n")
            self._pending = ""
            if text.count('"') % 2 and _QUOTED_VALUE.match(text):
                if not final and len(text) < MAX_RECORD:
                    self._pending = text  # the quoted value goes on
                else:
                    refuse(self.tally, NOT_CSV)  # a quote never closed
                continue
            if len(text) > MAX_RECORD + 1:
                refuse(self.tally, NOT_CSV)
            elif text.strip():
                # One reader per record: a quote left open must not swallow the next.
                yield from self._reader([text.rstrip("\r\n")])


class Piece:
    """The numeric rows of one datastream in one answer, held until put in order.

    Stamps and values are arrays (16 bytes a row). `ascending` stays true while each
    stamp is above the one before it, the usual case: such a piece needs no
    sorting. `places` is the most decimals a value was written with (-1: a value
    in exponent notation), which makes register differences exact (`difference`).
    """

    __slots__ = ("ascending", "places", "register", "stamps", "values")

    def __init__(self, *, register: bool = True) -> None:
        """Start an empty piece; only a register's decimals matter (differences)."""
        self.stamps = array("q")
        self.values = array("d")
        self.places = 0
        self.register = register
        self.ascending = True

    def __len__(self) -> int:
        """Return the rows held."""
        return len(self.stamps)

    def add(
        self, rows: list[Fields], stream: int, low: int, high: int, tally: Tally
    ) -> None:
        """Hold the rows of `stream` with low <= stamp < high; count refused ones.

        Rows of other datastreams, or outside the bounds (a neighbouring answer's),
        and text values are no amount: not held, not refused. A chunk of clean rows
        is converted a column at a time; any other goes row by row.
        """
        if not rows:
            return
        try:
            ids, stamps_text, texts = zip(*rows, strict=True)
            stamps = array("q", map(int, stamps_text))
            values = array("d", map(float, texts))
        except ValueError, OverflowError, TypeError:
            self._add_rows(rows, stream, low, high, tally)
            return
        ascending = all(map(operator.lt, stamps, islice(stamps, 1, None)))
        first, last = (
            (stamps[0], stamps[-1]) if ascending else (min(stamps), max(stamps))
        )
        if not (
            ids.count(str(stream)) == len(ids)
            and math.isfinite(sum(values))  # NaN or an infinity makes it either
            and min(values) > -MAX_VALUE
            and max(values) < MAX_VALUE
            and max(low, MIN_MS) <= first
            and last < high
            and last <= MAX_MS
        ):
            self._add_rows(rows, stream, low, high, tally)
            return
        if self.stamps and self.stamps[-1] >= stamps[0] or not ascending:
            self.ascending = False
        if self.register:
            self._places("\n".join(texts))
        self.stamps.extend(stamps)
        self.values.extend(values)

    def _places(self, texts: str) -> None:
        """Note the most decimals among these values (-1 for exponent notation)."""
        if self.places < 0 or not self.register:
            return
        if "e" in texts or "E" in texts:
            self.places = -1
        elif "." in texts:
            written = max(map(len, _FRACTION.findall(texts)))
            self.places = max(self.places, min(written - 1, 99))

    def _add_rows(
        self, rows: list[Fields], stream: int, low: int, high: int, tally: Tally
    ) -> None:
        """Check and hold rows one at a time."""
        for fields in rows:
            row = check(fields)
            if row is None:
                continue
            if isinstance(row, str):
                refuse(tally, row)
                continue
            value, stamp = row.value, row.epoch_ms
            if isinstance(value, str) or row.stream != stream:
                continue
            if not low <= stamp < high:
                continue
            if self.stamps and stamp <= self.stamps[-1]:
                self.ascending = False
            self._places(row.text)
            self.stamps.append(stamp)
            self.values.append(value)

    def cut(self) -> int:
        """Return the stamp a shorter span should end at to hold fewer rows.

        Rows in order: three quarters of those held lie before it. In any other
        order the rows held so far are a sample of the span: half lie before it.
        """
        if self.ascending:
            return self.stamps[len(self.stamps) * 3 // 4]
        return sorted(self.stamps)[len(self.stamps) // 2]

    def ordered(self) -> tuple[array[int], array[float]]:
        """Return stamps and values by time; of a repeated stamp the last row wins."""
        if self.ascending:
            return self.stamps, self.values
        stamps, values = self.stamps, self.values
        order = sorted(range(len(stamps)), key=stamps.__getitem__)  # stable
        # Of equal stamps the last in `order` came last: keep it.
        kept = [
            index
            for index, following in zip(order, [*order[1:], None], strict=True)
            if following is None or stamps[following] != stamps[index]
        ]
        return array("q", (stamps[i] for i in kept)), array(
            "d", (values[i] for i in kept)
        )
