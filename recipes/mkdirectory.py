"""``partita:mkdirectory``: create directories, and never remove them.

::

    [directories]
    recipe = partita:mkdirectory
    data = ${buildout:directory}/srv/data
    log = ${buildout:directory}/var/log
    mode = 0750                          # optional, octal; applied to the directories it creates

Every option except ``recipe`` and ``mode`` names a directory (a relative path is taken from the
buildout directory), created with its parents. Directories that exist are left as they are. The
part installs no file in buildout's sense: removing the part, or changing it, never deletes a
directory, so the data they hold survives every re-processing of the instance.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from partita.recipes.common import fail

RESERVED = ("recipe", "mode")
DEFAULT_MODE = 0o755


def directory_mode(options: Any, section: str) -> int:
    """The ``mode`` option as an integer (default 0755)."""
    value = options.get("mode", "").strip()
    if not value:
        return DEFAULT_MODE
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise fail(f"[{section}] option 'mode' must be an octal mode such as 0750, not {value!r}")
    return mode


def directories(options: Any, section: str, base: str) -> dict[str, Path]:
    """The directories the options name, by option (absolute paths)."""
    found = {}
    for key in sorted(options.keys()):
        if key in RESERVED or key.startswith("_"):
            continue
        text = options[key].strip()
        if not text or "\n" in text:
            raise fail(f"[{section}] option '{key}' must name one directory, not {options[key]!r}")
        path = Path(text)
        found[key] = path if path.is_absolute() else Path(base) / path
    return found


def make_directory(path: Path, mode: int, section: str) -> None:
    """Create `path` and its missing parents; the directories created get `mode`."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            os.mkdir(candidate, mode)
            os.chmod(candidate, mode)  # the umask narrowed it
        except FileExistsError:
            if not candidate.is_dir():
                raise fail(f"[{section}] cannot create {path}: {candidate} exists and is not a directory") from None
        except OSError as error:
            raise fail(f"[{section}] cannot create {candidate}: {error.strerror or error}") from None


class Recipe:
    """Creates the directories at install and update; returns nothing for buildout to remove."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        self.name = name
        self.mode = directory_mode(options, name)
        self.paths = directories(options, name, buildout["buildout"]["directory"])
        for key, path in self.paths.items():
            options[key] = str(path)

    def install(self) -> list[str]:
        for path in self.paths.values():
            make_directory(path, self.mode, self.name)
        return []

    update = install
