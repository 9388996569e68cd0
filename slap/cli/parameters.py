"""Instance parameters from the command line: ``k=v`` pairs and parameters files.

``--parameters k=v k2=v2`` and ``--node k=v …`` take several values after one flag, like SlapOS's
argparse ``nargs='*'``: `expand_greedy` rewrites the arguments before click parses them, so that
each following ``k=v`` word gets its own flag. It stops at the first word that is an option or
has no ``=`` (so ``slapos request --parameters a=1 TITLE URL`` still finds TITLE and URL).

Parameters files are JSON (``.json``) or YAML (``.yaml``, ``.yml``) and hold one mapping.

Serialisation (SlapOS's JSON-in-XML convention, `reference/slap-protocol.md` §2.3): the SLAP
protocol carries parameters as a flat mapping of strings. The parameters of a file follow, first
``--force-serialisation``, else the serialisation the release declares in its descriptor
(``software.cfg.json``, `slap.software_descriptor`), as SlapOS's client does:

- ``xml``: each value is sent as a string (numbers and booleans become their ``str()``, as
  SlapOS's ``dict2xml`` does: ``8081``, ``True``); a nested value (list, mapping) is refused,
  since the instance could not read it;
- ``json-in-xml``: the whole mapping is sent as one parameter ``_`` holding its JSON
  (``{"_": json.dumps(params, indent=2)}``), unless the file already holds only ``_``.

A release that declares nothing (no descriptor) keeps Partita's default: a mapping of strings
is sent flat, anything else as json-in-xml.
``k=v`` parameters are always strings, sent as they are (as SlapOS's client).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from partita.slap.errors import ValidationError

JSON_IN_XML = "json-in-xml"
XML = "xml"
SERIALISATIONS = (XML, JSON_IN_XML)


def expand_greedy(args: Sequence[str], flags: Iterable[str]) -> list[str]:
    """``--flag a=1 b=2`` -> ``--flag a=1 --flag b=2`` for each of `flags`."""
    flags = tuple(flags)
    out: list[str] = []
    current: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            out.extend(args[index - 1:])
            break
        if arg in flags:
            current = arg
            out.append(arg)
            if index < len(args):  # its first value, whatever it is: click checks it
                out.append(args[index])
                index += 1
        elif any(arg.startswith(flag + "=") for flag in flags):
            current = arg.split("=", 1)[0]
            out.append(arg)
        elif current is not None and not arg.startswith("-") and "=" in arg:
            out.extend([current, arg])
        else:
            current = None
            out.append(arg)
    return out


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a word without ``=`` is refused."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"{option} expects KEY=VALUE, not {value!r}")
        pairs[key.strip()] = text
    return pairs


def read_parameters_file(path: str) -> dict[str, Any]:
    """The mapping in a JSON or YAML file (chosen by its extension)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ValidationError(f"parameters file {path}: expected a .json, .yaml or .yml file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"cannot read parameters file {path}: {error}") from None
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValidationError(f"bad parameters file {path}: {first}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"parameters file {path} must hold a mapping, not {type(data).__name__}")
    return {str(key): value for key, value in data.items()}


def needs_json_in_xml(parameters: dict[str, Any]) -> bool:
    return any(not isinstance(value, str) for value in parameters.values())


def serialise(parameters: dict[str, Any], force: str | None = None,
              declared: str | None = None) -> dict[str, Any]:
    """Parameters as sent on the wire: flat strings, or one ``_`` holding JSON (see the module doc).

    `force` is ``--force-serialisation``, `declared` what the release's descriptor declares."""
    chosen = force or declared
    if chosen is None:
        chosen = JSON_IN_XML if needs_json_in_xml(parameters) else XML
    if chosen == JSON_IN_XML:
        if list(parameters) == ["_"] and isinstance(parameters["_"], str):
            return dict(parameters)
        return {"_": json.dumps(parameters, indent=2, sort_keys=True)}
    flat: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, (dict, list)):
            why = "--force-serialisation xml" if force else "the software release declares xml serialisation"
            raise ValidationError(f"parameter {key!r} is a {'mapping' if isinstance(value, dict) else 'list'}: "
                                  f"{why}, which sends only strings, numbers and booleans")
        flat[key] = _scalar_text(value)
    return flat


def _scalar_text(value: Any) -> str:
    """As SlapOS's ``dict2xml``: ``str()`` of the value (``1``, ``True``), None as empty."""
    return "" if value is None else str(value)
