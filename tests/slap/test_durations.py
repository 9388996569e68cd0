"""slap.cli.durations: DURATION, TTL and SINCE as the admin commands read them."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from partita.slap.cli.durations import (
    ago, describe_seconds, expiry_phrase, parse_duration, parse_since, parse_ttl, show_time,
)
from partita.slap.errors import ValidationError

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("text", "seconds"), [
    ("45s", 45), ("30m", 1800), ("2h", 7200), ("7d", 604800), ("1w", 604800), (" 3H ", 10800),
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-1h", "1.5h", "0m", "2y"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(ValidationError, match="^--ttl: "):
        parse_duration(text)


def test_ttl_never_is_no_expiry() -> None:
    assert parse_ttl("never") is None and parse_ttl("NEVER") is None
    assert parse_ttl("1d") == 86400
    with pytest.raises(ValidationError):
        parse_ttl("forever")


def test_since_a_duration_ago_or_an_iso_date() -> None:
    assert parse_since("2h", NOW) == NOW.timestamp() - 7200
    assert parse_since("2026-12-01", NOW) == datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()
    assert parse_since("2026-12-01T11:00:00+01:00", NOW) == datetime(2026, 12, 1, 10, tzinfo=timezone.utc).timestamp()
    with pytest.raises(ValidationError, match="^--since: 'yesterday' is neither a duration"):
        parse_since("yesterday", NOW)


def test_display_of_dates_and_expiry() -> None:
    assert show_time("2026-12-02T10:00:05+00:00") == "2026-12-02 10:00 UTC"
    assert show_time("2026-12-02T11:00:05+01:00", seconds=True) == "2026-12-02 10:00:05 UTC"
    assert show_time(None) == "" and show_time("soon") == "soon"
    assert expiry_phrase("2026-12-02T11:00:00+00:00", NOW) == "expires on 2026-12-02 11:00 UTC (in 1h)"
    assert expiry_phrase("2026-12-09T10:00:10+00:00", NOW) == "expires on 2026-12-09 10:00 UTC (in 7d)"
    assert expiry_phrase(None, NOW) == "never expires"
    assert expiry_phrase("2026-12-01T00:00:00+00:00", NOW) == "expired on 2026-12-01 00:00 UTC"
    assert (describe_seconds(90), describe_seconds(5400), describe_seconds(59)) == ("90s", "90m", "59s")


def test_ago_says_how_long_since_a_wire_date() -> None:
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=timezone.utc)
    assert ago("2026-12-03T11:59:48+00:00", now) == "12 s ago"
    assert ago("2026-12-03T11:55:00", now) == "5 min ago"  # naive: UTC
    assert ago("2026-12-03T09:00:00+00:00", now) == "3 h ago"
    assert ago("2026-12-01T12:00:00+00:00", now) == "2 d ago"
    assert ago("2026-12-03T12:00:05+00:00", now) == "0 s ago"  # a clock ahead never says "-5 s"
    assert ago(None, now) == "never" and ago("soon", now) == "soon"
