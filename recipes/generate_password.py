"""``partita:generate-password``: a random password, the same at every run of the instance.

::

    [password]
    recipe = partita:generate-password
    storage-path = ${buildout:directory}/.passwords/database   # optional (default below)
    length = 24                                                  # optional ("bytes": SlapOS's name)

    [x]
    recipe = partita:jinja2
    context = key password password:passwd
    ...

The first run draws ``length`` letters and digits (default 24) with `secrets` and stores them in
``storage-path`` (default ``<buildout parts-directory>/<section>/passwd``): a file created
owner-only (0600) and written atomically, in a directory made 0700, so only the partition's user
reads it. Later runs read the file back: the password is stable across runs, and a new one is drawn
only when the file is gone. Removing or changing the part never deletes it.

The output ``passwd`` is served to the sections that reference it, ``${password:passwd}``, but is
not one of the section's recorded options: zc.buildout writes the options of each installed part
into ``.installed.cfg``, and the password must stay out of it. The recipe keeps the value in memory
and answers it through the section's ``get`` (which buildout's substitution and ``options[...]``
call); ``keys()`` and ``copy()``, what buildout records, never hold it. A section that references
the password in one of its own options (``inline = ${password:passwd}``) records it in turn: put it
in template content (``url``) or a Jinja2 ``context`` instead.
"""
from __future__ import annotations

import secrets
import string
from pathlib import Path
from typing import Any

from partita.recipes.common import fail
from partita.slap.fileio import atomic_write

ALPHABET = string.ascii_letters + string.digits
DEFAULT_LENGTH = 24
MAX_LENGTH = 4096
OUTPUT = "passwd"


def password_length(options: Any, section: str) -> int:
    """``length`` (or SlapOS's ``bytes``): the number of characters, default 24."""
    names = [name for name in ("length", "bytes") if options.get(name, "").strip()]
    if len(names) > 1:
        raise fail(f"[{section}] give one of the options 'length' and 'bytes', not both")
    if not names:
        return DEFAULT_LENGTH
    value = options[names[0]].strip()
    if not value.isdigit() or not 8 <= int(value) <= MAX_LENGTH:
        raise fail(f"[{section}] option '{names[0]}' must be a number of characters from 8 to {MAX_LENGTH}, "
                   f"not {value!r}")
    return int(value)


def new_password(length: int) -> str:
    """`length` letters and digits drawn with `secrets`."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def stored_password(path: Path, section: str) -> str | None:
    """The password kept in `path`; None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"[{section}] cannot read the stored password {path}: "
                   f"{getattr(error, 'strerror', None) or error}") from None
    return text or None


def store_password(path: Path, password: str, section: str) -> None:
    """Write `password` to `path`, owner-only from creation, atomically."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, password + "\n", mode=0o600)
    except OSError as error:
        raise fail(f"[{section}] cannot store the password in {path}: {error.strerror or error}") from None


def storage_path(buildout: Any, options: Any, name: str) -> Path:
    value = options.get("storage-path", "").strip()
    if not value:
        return Path(buildout["buildout"]["parts-directory"]) / name / OUTPUT
    path = Path(value)
    return path if path.is_absolute() else Path(buildout["buildout"]["directory"]) / path


def serve_secret(options: Any, key: str, value: str) -> None:
    """Make ``options[key]`` and ``${section:key}`` answer `value` without it being an option
    buildout records (see the module docstring)."""
    recorded_get = options.get

    def get(option: str, default: Any = None, *args: Any, **kwargs: Any) -> Any:
        if option == key:
            return value
        return recorded_get(option, default, *args, **kwargs)

    options.get = get


class Recipe:
    """Reads or draws the password when the section is set up; installs nothing."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        length = password_length(options, name)
        path = storage_path(buildout, options, name)
        options["storage-path"] = str(path)
        password = stored_password(path, name)
        if password is None:
            password = new_password(length)
            store_password(path, password, name)
        serve_secret(options, OUTPUT, password)

    def install(self) -> list[str]:
        return []

    def update(self) -> list[str]:
        return []


