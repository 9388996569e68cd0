"""Check an instance's parameters against its release's JSON schema, for ``partita:slapconfiguration``.

A release may ship ``software.cfg.json`` next to ``software.cfg`` (SlapOS's descriptor,
`slap.software_descriptor`): per software type, ``request`` names the JSON Schema of the
parameters, relative to the descriptor::

    {"serialisation": "xml",
     "software-type": {"default": {"request": "instance-input-schema.json", ...}}}

For the instance's software type, the parameters are

1. *unstringified*: a text parameter whose top-level property is declared ``integer``,
   ``number`` or ``boolean`` becomes that type when it reads as one (``"8081"`` → 8081,
   ``"true"`` → true): ``xml`` serialisation and ``slapos request --parameters k=v`` send text;
2. given the schema's top-level ``default`` of each property they do not set;
3. validated: the first error becomes one line naming the field.

`schema_for`, `unstringify`, `fill_defaults` and `first_error` are pure; `load_schema` reads files
or URLs with `slap.software_descriptor.read_descriptor` (size and time bounded).
"""
from __future__ import annotations

import json
import posixpath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from partita.slap.software_descriptor import DescriptorProblem, read_descriptor

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class SchemaProblem(Exception):
    """The descriptor or schema cannot be used, or the parameters do not match (one line)."""


def relative_location(base: str, reference: str) -> str:
    """`reference` (a relative path or an absolute URL/path) read from the directory of `base`."""
    if urlsplit(reference).scheme or reference.startswith("/"):
        return reference
    parts = urlsplit(base)
    if parts.scheme in ("http", "https", "file"):
        path = posixpath.normpath(posixpath.join(posixpath.dirname(parts.path), reference))
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), reference))


def read_json(location: str) -> Any | None:
    """The JSON document at `location`; None when there is no such file."""
    try:
        text = read_descriptor(location)
    except DescriptorProblem as problem:
        raise SchemaProblem(f"cannot read {location}: {problem}") from None
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise SchemaProblem(f"{location} is not JSON: {error}") from None


def schema_for(descriptor: Any, software_type: str) -> str | None:
    """The ``request`` schema path the descriptor gives `software_type`; None when it gives none."""
    if not isinstance(descriptor, dict):
        raise SchemaProblem("the descriptor is not a JSON object")
    types = descriptor.get("software-type", {})
    if not isinstance(types, dict):
        raise SchemaProblem("the descriptor's 'software-type' is not a JSON object")
    entry = types.get(software_type)
    if not isinstance(entry, dict):
        return None
    request = entry.get("request")
    return request if isinstance(request, str) and request else None


def load_schema(descriptor_location: str, descriptor: Any, software_type: str) -> dict[str, Any] | None:
    """The input schema of `software_type`, read relative to the descriptor; None when none."""
    reference = schema_for(descriptor, software_type)
    if reference is None:
        return None
    location = relative_location(descriptor_location, reference)
    schema = read_json(location)
    if schema is None:
        raise SchemaProblem(f"the schema {location} of software type {software_type!r} does not exist")
    if not isinstance(schema, dict):
        raise SchemaProblem(f"the schema {location} is not a JSON object")
    return schema


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    found = schema.get("properties")
    return found if isinstance(found, dict) else {}


def _types(declaration: Any) -> list[str]:
    if not isinstance(declaration, dict):
        return []
    kind = declaration.get("type")
    return [kind] if isinstance(kind, str) else [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def _convert(value: str, types: list[str]) -> Any:
    if "string" in types:
        return value
    text = value.strip()
    if "boolean" in types and text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    for kind, convert in (("integer", int), ("number", float)):
        if kind in types:
            try:
                return convert(text)
            except ValueError:
                pass
    return value


def unstringify(parameters: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`parameters` with text values of non-text properties converted (see the module docstring)."""
    properties = _properties(schema)
    return {key: _convert(value, _types(properties.get(key))) if isinstance(value, str) else value
            for key, value in parameters.items()}


def fill_defaults(parameters: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`parameters` with the top-level default of each property they do not set."""
    result = dict(parameters)
    for key, declaration in _properties(schema).items():
        if key not in result and isinstance(declaration, dict) and "default" in declaration:
            result[key] = declaration["default"]
    return result


def first_error(parameters: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """One line describing why `parameters` do not match `schema`; None when they match."""
    import jsonschema  # in the node's toolchain

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise SchemaProblem(f"the schema is not a valid JSON schema: {error.message}") from None
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(parameters))
    if error is None:
        return None
    field = ".".join(str(part) for part in error.absolute_path)
    where = f"parameter {field!r}: " if field else "parameters: "
    return where + " ".join(error.message.split())[:300]
