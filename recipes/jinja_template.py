"""The Jinja2 mode of ``partita:template`` (``engine = jinja2``, or ``recipe = partita:jinja2``).

::

    [instance-profile]
    recipe = partita:jinja2
    url = ${software-release:base}/instance.cfg.jinja2
    output = ${buildout:directory}/instance.cfg
    context =
        key greeting slap-configuration:configuration.greeting
        json parameters slap-configuration:configuration
        section connection slap-connection
        raw python ${buildout:executable}

Each ``context`` line gives the template one variable:

- ``key NAME SECTION:OPTION``: the option's value, a string (``SECTION`` empty: this section);
- ``json NAME SECTION:OPTION`` (or SlapOS's ``jsonkey``): the option's value decoded as JSON;
- ``section NAME SECTION``: the section's options, a dict of strings;
- ``raw NAME TEXT``: the rest of the line, as it is.

Values are read through buildout's public mapping API, ``buildout[section][option]``, when
buildout sets this section up, so the sections named are set up (and installed) first. The
template is plain Jinja2: ``${…}`` in it is left alone (a software profile can render an instance
profile full of references). A variable the template uses and the context does not define is an
error (`jinja2.StrictUndefined`), and so is a syntax error: both one line naming the template.
"""
from __future__ import annotations

import json
import re
from typing import Any

from partita.recipes import template
from partita.recipes.common import fail

KINDS = ("key", "json", "jsonkey", "section", "raw")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_context(text: str, section: str) -> list[tuple[str, str, str]]:
    """The ``(kind, name, argument)`` of each non-empty line of a ``context`` option."""
    entries = []
    for line in text.splitlines():
        fields = line.split(None, 2)
        if not fields:
            continue
        if len(fields) < 3 or fields[0] not in KINDS:
            raise fail(f"[{section}] context line {line.strip()!r} must be '<kind> <name> <value>', "
                       f"kind one of {', '.join(KINDS)}")
        kind, name, argument = fields
        if not _NAME.match(name):
            raise fail(f"[{section}] context name {name!r} is not a valid variable name")
        entries.append((kind, name, argument.strip()))
    return entries


def _option(buildout: Any, options: Any, reference: str, section: str) -> str:
    where, colon, option = reference.partition(":")
    if not colon or not option or " " in reference:
        raise fail(f"[{section}] context value {reference!r} must be SECTION:OPTION")
    try:
        found = options if where in ("", section) else buildout[where]
    except KeyError:
        raise fail(f"[{section}] context references the section [{where}], which does not exist") from None
    value = found.get(option)
    if value is None:
        raise fail(f"[{section}] context references {where or section}:{option}, which does not exist")
    return str(value)


def context_values(buildout: Any, options: Any, text: str, section: str) -> dict[str, Any]:
    """The template's variables, from the ``context`` option's text."""
    values: dict[str, Any] = {}
    for kind, name, argument in parse_context(text, section):
        if kind == "raw":
            values[name] = argument
        elif kind == "section":
            try:
                found = buildout[argument]
            except KeyError:
                raise fail(f"[{section}] context references the section [{argument}], which does not exist") from None
            values[name] = {key: found[key] for key in found}
        elif kind == "key":
            values[name] = _option(buildout, options, argument, section)
        else:
            value = _option(buildout, options, argument, section)
            try:
                values[name] = json.loads(value)
            except ValueError as error:
                raise fail(f"[{section}] context {name}: {argument} is not JSON ({error})") from None
    return values


def render(template: str, values: dict[str, Any], where: str, section: str) -> str:
    """`template` rendered by Jinja2 with `values`; undefined variables are errors."""
    import jinja2  # in the node's toolchain

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)
    try:
        return environment.from_string(template).render(**values)
    except jinja2.TemplateSyntaxError as error:
        raise fail(f"[{section}] {where}, line {error.lineno}: {error.message}") from None
    except jinja2.UndefinedError as error:
        raise fail(f"[{section}] {where}: {error.message} (give it in 'context')") from None
    except jinja2.TemplateError as error:
        raise fail(f"[{section}] {where}: {error}") from None
    except Exception as error:  # noqa: BLE001 - an expression of the template failed (1 + "a", a missing key...)
        raise fail(f"[{section}] {where}: {type(error).__name__}: {error}") from None


class Recipe(template.Recipe):
    """``partita:jinja2``: ``partita:template`` with ``engine = jinja2``."""

    default_engine = "jinja2"
