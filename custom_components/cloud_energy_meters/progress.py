"""How far an entry's history import has come, for its "History import" sensor.

Each statistic counts from 0 (nothing of its backfill stored) to 1 (its import
finished: it holds all the cloud has). Between, the share of the backfill span
that its stored rows cover, as the importer writes them batch by batch. The entry's
progress is the mean over its statistics, in whole percent, rounded down: 100 only
once every statistic is done.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import math

from homeassistant.core import CALLBACK_TYPE, callback


@dataclass(slots=True)
class ImportProgress:
    """The import progress of one entry's statistics."""

    covered: dict[str, float] = field(default_factory=dict)
    expected: frozenset[str] = frozenset()
    reported: bool = False
    """Whether the importer has said anything since the entry was set up."""
    _listeners: list[Callable[[], None]] = field(default_factory=list)
    _shown: tuple[int, int, bool] | None = None

    @property
    def percent(self) -> int:
        """Return the entry's progress, 0 to 100 (100 when it has nothing to import)."""
        if not self.expected:
            return 100
        done = sum(self.covered.get(statistic, 0.0) for statistic in self.expected)
        return math.floor(100 * done / len(self.expected))

    @property
    def done(self) -> int:
        """Return how many statistics are completely imported."""
        return sum(1 for s in self.expected if self.covered.get(s, 0.0) >= 1.0)

    @callback
    def expect(self, statistic_ids: Iterable[str]) -> None:
        """Set which statistics the entry imports (a discovery may change them)."""
        self.expected = frozenset(statistic_ids)
        self._changed()

    @callback
    def reached(
        self, statistic_id: str, hour: datetime, now: datetime, backfill: timedelta
    ) -> None:
        """Note that a statistic's stored rows reach `hour` (exclusive)."""
        start = now - backfill
        share = (hour - start) / (now - start) if now > start else 1.0
        share = min(max(share, 0.0), 0.999)  # 1 is for a finished import only
        self.covered[statistic_id] = max(share, self.covered.get(statistic_id, 0.0))
        self.reported = True
        self._changed()

    @callback
    def finished(self, statistic_id: str) -> None:
        """Note that a statistic holds all the cloud has (its import ended)."""
        self.covered[statistic_id] = 1.0
        self.reported = True
        self._changed()

    @callback
    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call `listener` when the progress shown changes; return how to stop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self) -> None:
        """Tell the listeners when the whole percentage or the finished count moved.

        Also at the importer's first word, which ends the value restored.
        """
        if (shown := (self.percent, self.done, self.reported)) == self._shown:
            return
        self._shown = shown
        for listener in list(self._listeners):
            listener()
