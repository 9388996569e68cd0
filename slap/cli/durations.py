"""Durations and dates as the admin commands take and show them (pure: the clock is an argument).

::

    DURATION   <n><unit>, unit s, m, h, d or w: 45s, 30m, 2h, 7d, 1w   -> seconds (> 0)
    TTL        a DURATION, or "never" (`token create` only)           -> seconds, or NEVER
    SINCE      a DURATION ago, or an ISO 8601 date or time (a naive    -> epoch seconds
               one is UTC): 2h, 2026-12-01, 2026-12-01T10:00:00+01:00

Bad text is a `ValidationError` naming the option and what it accepts (one ``slapos: error:``
line, exit status 1).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from partita.slap.errors import ValidationError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
NEVER = "never"

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str, option: str = "--ttl") -> int:
    """Seconds in `text` (``30m``, ``2h``, ``7d``)."""
    match = _DURATION.match(text or "")
    if match is None:
        raise ValidationError(f"{option}: {text!r} is not a duration: expected a number and a unit "
                              "(s, m, h, d, w), e.g. 30m, 2h, 7d")
    seconds = int(match.group(1)) * UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValidationError(f"{option}: the duration must be more than 0, not {text!r}")
    return seconds


def parse_ttl(text: str, option: str = "--ttl") -> int | None:
    """Seconds in `text`, or None for ``never`` (no expiry)."""
    if text.strip().lower() == NEVER:
        return None
    return parse_duration(text, option)


def parse_since(text: str, now: datetime, option: str = "--since") -> float:
    """Epoch seconds of `text`: a duration before `now` (an aware datetime) or an ISO 8601 date."""
    if _DURATION.match(text or ""):
        return now.timestamp() - parse_duration(text, option)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{option}: {text!r} is neither a duration (30m, 2h, 7d) nor an ISO date "
                              "(2026-12-01, 2026-12-01T10:00:00+00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def describe_seconds(seconds: float) -> str:
    """``2h``, ``7d``, ``90s``: the largest unit up to days that divides `seconds` (else hours
    and minutes)."""
    seconds = int(round(seconds))
    for unit, size in sorted(((u, n) for u, n in UNITS.items() if u != "w"), key=lambda item: -item[1]):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{max(seconds, 0)}s"


def wire_time(iso: str) -> datetime | None:
    """A wire date (ISO 8601; a naive one is UTC), or None when it is not a date."""
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def ago(iso: str | None, now: datetime | None = None) -> str:
    """A past wire date as ``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; ``never`` for
    None; as it is when it is not a date."""
    if not iso:
        return "never"
    moment = wire_time(iso)
    if moment is None:
        return str(iso)
    seconds = max(int(((now or datetime.now(timezone.utc)) - moment).total_seconds()), 0)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def show_time(iso: str | None, *, seconds: bool = False) -> str:
    """A wire date (ISO 8601) as ``2026-12-02 10:00 UTC`` (``10:00:05`` with `seconds`) for
    tables; empty for None; as it is when it is not a date."""
    if not iso:
        return ""
    moment = wire_time(iso)
    if moment is None:
        return str(iso)
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{moment.astimezone(timezone.utc).strftime(shape)} UTC"


def expiry_phrase(iso: str | None, now: datetime) -> str:
    """``expires on 2026-12-02 11:00 UTC (in 1h)``, or ``never expires`` for None."""
    if not iso:
        return "never expires"
    try:
        left = datetime.fromisoformat(str(iso)).timestamp() - now.timestamp()
    except ValueError:
        return f"expires on {iso}"
    if left <= 0:
        return f"expired on {show_time(iso)}"
    return f"expires on {show_time(iso)} (in {describe_seconds(_round_to_minute(left))})"


def _round_to_minute(seconds: float) -> float:
    return seconds if seconds < 60 else round(seconds / 60) * 60
