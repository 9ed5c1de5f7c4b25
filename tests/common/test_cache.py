"""Answers kept while the cloud says they are fresh (Cache-Control: max-age)."""

import pytest

from custom_components.cloud_energy_meters.providers.cache import (
    MAX_AGE,
    MAX_ENTRIES,
    ResponseCache,
    max_age,
)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("max-age=900", 900.0),
        ("public, max-age=60", 60.0),
        ('max-age="30"', 30.0),
        ("MAX-AGE=5, must-revalidate", 5.0),
        ("max-age=99999999", MAX_AGE),
        ("no-store", 0.0),
        ("no-cache, max-age=900", 0.0),
        ("private, max-age=900", 0.0),
        ("s-maxage=900", 0.0),
        ("max-age=-1", 0.0),
        ("max-age=abc", 0.0),
        ("", 0.0),
        (None, 0.0),
    ],
)
def test_max_age(header: str | None, seconds: float) -> None:
    """Only a plain max-age keeps an answer; anything odd keeps nothing."""
    assert max_age(header) == seconds


def test_fresh_answers_are_kept_until_they_are_stale() -> None:
    """An answer is returned while fresh, then forgotten."""
    now = [0.0]
    cache = ResponseCache(clock=lambda: now[0])
    cache.put("a", {"x": 1}, "max-age=10")
    cache.put("b", {"y": 2}, "no-store")
    assert cache.get("a") == (True, {"x": 1})
    assert cache.get("b") == (False, None)
    now[0] = 10.0
    assert cache.get("a") == (False, None)
    assert cache.hits == 1
    cache.put("a", 1, "max-age=10")
    cache.put("a", 2, "no-store")  # a new answer that may not be kept drops the old
    assert cache.get("a") == (False, None)


def test_the_cache_is_bounded() -> None:
    """The oldest answers go first past MAX_ENTRIES."""
    cache = ResponseCache(clock=lambda: 0.0)
    for index in range(MAX_ENTRIES + 5):
        cache.put(str(index), index, "max-age=60")
    assert cache.get("0") == (False, None)
    assert cache.get(str(MAX_ENTRIES + 4)) == (True, MAX_ENTRIES + 4)
    cache.clear()
    assert cache.get(str(MAX_ENTRIES + 4)) == (False, None)
