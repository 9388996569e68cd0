"""``partita:template``: write a file from a template (``url``) or from the section (``inline``).

::

    [instance-profile]
    recipe = partita:template
    url = ${software-release:base}/instance.cfg.in     # a path, file:// or http(s)://
    sha256sum = 9f86d0…                                # optional (or md5sum)
    output = ${buildout:directory}/instance.cfg
    mode = 0644                                        # optional, octal

    [greeting]
    recipe = partita:template
    inline = ${slap-configuration:configuration.greeting}
    output = ${buildout:directory}/etc/greeting.txt

Content read from ``url`` is substituted once, by the recipe: ``${section:option}`` becomes that
option's value (``${:option}`` reads this section) and ``$${`` becomes a literal ``${``, so a
template rendered when the software is built can leave references for instance time. Other ``$``
characters are kept, and so are the values inserted, even when they hold ``${``.

The ``inline`` text is an ordinary option value: buildout substitutes its ``${section:option}``
references, once, when it sets the section up, and keeps ``$${`` as written (zc.buildout 6 never
turns it into ``${``; put content that needs a literal ``${`` in a file and use ``url``). The
recipe writes that text as it is. It reads it through ``Options.copy()``, the values as buildout
set them up (what buildout itself records of a part), not through ``options["inline"]``: reading
an option substitutes it a second time, so a value inserted into it that holds ``${`` (a user's
parameter) would break the buildout instead of being written verbatim.

With ``engine = jinja2`` (or ``recipe = partita:jinja2``) the content, from ``url`` or ``inline``,
is a Jinja2 template rendered with the variables of the ``context`` option instead
(`recipes.jinja_template`): no ``${…}`` substitution by the recipe.

The template is read and rendered when buildout initialises the section, so the sections it
references are set up, and installed, before this part. Without ``mode``, the file gets 0755 if it
starts with ``#!`` and 0644 otherwise.
"""
from __future__ import annotations

import hashlib
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from partita.recipes.common import fail, output_path, write_file

DOWNLOAD_TIMEOUT = 60.0
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VALID = re.compile(r"([-a-zA-Z0-9 ._]*):([-a-zA-Z0-9 ._]+)\Z")

Lookup = Callable[[str, str], str | None]


def substitute(text: str, lookup: Lookup, name: str) -> str:
    """`text` with ``${section:option}`` replaced through `lookup` and ``$${`` made ``${``."""
    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "${"
        reference = match.group(1)
        valid = _VALID.match(reference)
        if not valid:
            raise fail(f"[{name}] the template holds ${{{reference}}}, which is not a ${{section:option}} "
                       "reference (write $${ for a literal ${)")
        section, option = valid.group(1) or name, valid.group(2)
        value = lookup(section, option)
        if value is None:
            raise fail(f"[{name}] the template references ${{{section}:{option}}}, which does not exist")
        return value

    return _REFERENCE.sub(replace, text)


def fetch(url: str, directory: str, name: str) -> bytes:
    """The bytes at `url`: a path (relative to the buildout directory), file:// or http(s)://."""
    scheme = urllib.parse.urlsplit(url).scheme
    try:
        if scheme in ("http", "https"):
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                return response.read()
        if scheme == "file":
            return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).read_bytes()
        if scheme:
            raise fail(f"[{name}] cannot read {url}: only paths, file://, http:// and https:// are supported")
        return (Path(directory) / url).read_bytes()
    except OSError as error:
        raise fail(f"[{name}] cannot read {url}: {getattr(error, 'strerror', None) or error}") from None


def verify(data: bytes, options: Any, url: str, name: str) -> None:
    """Compare `data` with the ``md5sum`` / ``sha256sum`` options, when given."""
    for option, algorithm in (("md5sum", "md5"), ("sha256sum", "sha256")):
        expected = options.get(option, "").strip().lower()
        if expected:
            found = hashlib.new(algorithm, data).hexdigest()
            if found != expected:
                raise fail(f"[{name}] {url} has {option} {found}, expected {expected}")


def file_mode(options: Any, content: str, name: str) -> int:
    value = options.get("mode", "").strip()
    if not value:
        return 0o755 if content.startswith("#!") else 0o644
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise fail(f"[{name}] option 'mode' must be an octal file mode such as 0644, not {value!r}")
    return mode


def buildout_lookup(buildout: Any, options: Any) -> Lookup:
    """Read ``section:option`` from buildout (which sets that section up first)."""
    def lookup(section: str, option: str) -> str | None:
        if section == options.name:
            return options.get(option)
        try:
            found = buildout[section]
        except KeyError:
            return None
        return found.get(option)

    return lookup


def inline_text(options: Any) -> str | None:
    """The ``inline`` option as buildout substituted it once (see the module docstring)."""
    return options.copy().get("inline")


ENGINES = ("substitute", "jinja2")


class Recipe:
    """Renders in ``__init__``; writes at install, and at update when the file differs."""

    default_engine = "substitute"

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        directory = buildout["buildout"]["directory"]
        self.path = output_path(options, "output", name, directory)
        options["output"] = str(self.path)
        self.content = self._content(buildout, name, options, directory)
        self.mode = file_mode(options, self.content, name)

    def _content(self, buildout: Any, name: str, options: Any, directory: str) -> str:
        engine = options.get("engine", "").strip() or self.default_engine
        if engine not in ENGINES:
            raise fail(f"[{name}] option 'engine' must be one of {', '.join(ENGINES)}, not {engine!r}")
        if engine != "jinja2" and options.get("context") is not None:
            raise fail(f"[{name}] option 'context' needs engine = jinja2")
        url, inline = options.get("url", "").strip(), inline_text(options)
        if bool(url) == (inline is not None):
            raise fail(f"[{name}] needs exactly one of the options 'url' and 'inline'")
        if inline is not None:
            # recorded escaped: buildout substitutes the options it reads back from .installed.cfg
            # (when a part this one references is reinstalled), so a ``${`` in the value (a user's
            # parameter) would be parsed there as a reference
            options["inline"] = inline.replace("$", "$$")
            text, where = inline, "inline"
        else:
            data = fetch(url, directory, name)
            verify(data, options, url, name)
            try:
                text, where = data.decode("utf-8"), url
            except UnicodeDecodeError:
                raise fail(f"[{name}] {url} is not UTF-8 text") from None
        if engine == "jinja2":
            from partita.recipes import jinja_template

            values = jinja_template.context_values(buildout, options, options.get("context", ""), name)
            return jinja_template.render(text, values, where, name)
        if inline is not None:
            return inline
        return substitute(text, buildout_lookup(buildout, options), name)

    def install(self) -> list[str]:
        write_file(self.path, self.content, self.mode)
        return [str(self.path)]

    update = install
