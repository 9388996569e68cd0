"""Short names of software releases: ``product.NAME``, as SlapOS users write them.

``slapos request TITLE product.NAME`` names a release by a short name instead of its URL. The
master resolves it (so every client, SlapOS's included, benefits): first among the names an admin
published (``slapos software publish NAME URL``), then among the releases shipped with Partita,
``software-releases/NAME/software.cfg`` beside the installed packages (`shipped_releases`). A
checkout (an editable install) has them; a wheel does not ship them (``setup.cfg`` packages only
the Python packages), so there only published names resolve.

`split_name` and `check_name` are pure; `shipped_releases` lists a directory.
"""
from __future__ import annotations

import re
from pathlib import Path

from partita.slap.errors import ValidationError

PREFIX = "product."
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")
PROFILE = "software.cfg"


def shipped_directory() -> Path:
    """Where the shipped releases are in a checkout: ``software-releases`` beside ``slap``."""
    return Path(__file__).resolve().parent.parent / "software-releases"


def is_short_name(url: str) -> bool:
    return url.startswith(PREFIX)


def split_name(url: str) -> str:
    """``product.NAME`` -> ``NAME`` (checked)."""
    return check_name(url[len(PREFIX):] if is_short_name(url) else url)


def check_name(name: str) -> str:
    """A name is lower-case letters, digits, ``.``, ``_`` and ``-`` (at most 63), starting with a
    letter or digit."""
    if not NAME.match(name):
        raise ValidationError(f"bad software release name {name!r}: use lower-case letters, digits, '.', '_' "
                              "and '-' (at most 63, starting with a letter or a digit)")
    return name


def shipped_releases(directory: Path | None = None) -> dict[str, str]:
    """NAME -> the absolute path of ``NAME/software.cfg`` for each shipped release."""
    root = shipped_directory() if directory is None else directory
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return {}
    found = {}
    for entry in entries:
        profile = entry / PROFILE
        if NAME.match(entry.name) and profile.is_file():
            found[entry.name] = str(profile)
    return found


def unknown_name(name: str, known: list[str]) -> ValidationError:
    """The error for a name nobody published nor shipped, listing the known ones."""
    listed = ", ".join(PREFIX + item for item in sorted(known)) or "none"
    return ValidationError(f"unknown software release name {PREFIX + name!r} (known: {listed})")
