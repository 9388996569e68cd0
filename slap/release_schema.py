"""A software release's parameter schemas: what ``software.cfg.json`` declares per software type.

The descriptor (`slap.software_descriptor`, SlapOS's format) maps each software type to the JSON
Schema of its parameters (``request``) and of what it publishes (``response``), both relative to
the descriptor::

    {"serialisation": "xml",
     "software-type": {"default": {"title": "Default", "request": "instance-input-schema.json",
                                   "response": "instance-output-schema.json", "index": 0},
                       "default-slave": {"software-type": "default", "shared": true, ...}}}

An entry's type is its ``software-type`` field, else its key; ``shared: true`` marks the schema of
shared instances of that type. Both the master (before storing a request) and ``slapos request``
(before sending one) check parameters the way the instance will read them:

1. a ``_`` parameter holding a JSON object (json-in-xml) is decoded and checked as the parameters;
2. otherwise a text value of a top-level property declared ``integer``, ``number`` or ``boolean``
   becomes that type when it reads as one (``"8081"`` → 8081), as ``partita:slapconfiguration``
   does for xml serialisation; ``--parameters k=v`` and SLAP XML send text;
3. the first mismatch is one line naming the field: ``parameter 'port': 70000 is greater than the
   maximum of 65535`` (`ParameterMismatch`, a 400 INVALID on the wire).

A schema reference may not leave the descriptor's origin (same scheme and host for http(s), a
local path for a local descriptor): a descriptor cannot make its reader fetch elsewhere. A
descriptor or schema that cannot be used is a `SchemaProblem`; callers treat the release as
unchecked. Everything here is pure except `load_descriptor`, which reads through
`slap.software_descriptor.read_descriptor` (time and size bounded).
"""
from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from partita.slap.errors import ValidationError
from partita.slap.software_descriptor import (
    FETCH_TIMEOUT, DescriptorProblem, declared_serialisation, descriptor_location, read_descriptor,
)

JSON_IN_XML = "json-in-xml"
UNDERSCORE = "_"
MAX_SCHEMAS = 32  # schemas one descriptor may name
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")

Reader = Callable[[str, float], "str | None"]


class SchemaProblem(DescriptorProblem):
    """The descriptor or one of its schemas cannot be used (the release is then not checked)."""


class ParameterMismatch(ValidationError):
    """The parameters do not match the software type's schema; the message names the field."""


@dataclass(frozen=True)
class SoftwareType:
    """One entry of ``software-type``: its schemas already read (None when it names none)."""

    name: str
    key: str
    title: str = ""
    description: str = ""
    shared: bool = False
    index: int | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None


@dataclass(frozen=True)
class Descriptor:
    location: str
    name: str = ""
    description: str = ""
    serialisation: str | None = None
    types: tuple[SoftwareType, ...] = field(default_factory=tuple)

    def find(self, software_type: str, shared: bool = False) -> SoftwareType | None:
        """The entry for `software_type` (shared or not); None when the descriptor has none."""
        for entry in self.types:
            if entry.name == software_type and entry.shared == bool(shared):
                return entry
        return None

    def type_names(self) -> list[str]:
        return sorted({entry.name for entry in self.types})


@dataclass(frozen=True)
class ParameterRow:
    """One top-level parameter of a schema, for people."""

    name: str
    type: str
    required: bool
    default: Any
    has_default: bool
    description: str


# ------------------------------------------------------------------------------------------
# Locations
# ------------------------------------------------------------------------------------------

def _origin(location: str) -> tuple[str, str]:
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return scheme, parts.netloc.lower()
    return "local", ""


def relative_location(base: str, reference: str) -> str:
    """`reference` read from the directory of `base`; refused (SchemaProblem) when it leaves
    `base`'s origin (another host or scheme, or a URL named by a local descriptor)."""
    parts = urlsplit(base)
    ref_parts = urlsplit(reference)
    if ref_parts.scheme and len(ref_parts.scheme) > 1:
        target = reference
    elif parts.scheme.lower() in ("http", "https", "file"):
        directory = posixpath.dirname(parts.path)
        path = reference if reference.startswith("/") else posixpath.join(directory, reference)
        target = urlunsplit((parts.scheme, parts.netloc, posixpath.normpath(path), "", ""))
    else:
        target = reference if reference.startswith("/") else posixpath.join(posixpath.dirname(base), reference)
        target = posixpath.normpath(target)
    if _origin(target) != _origin(base):
        raise SchemaProblem(f"the schema {reference!r} is not where the descriptor is")
    if _origin(target)[0] == "local" and urlsplit(target).scheme.lower() == "file":
        target = unquote(urlsplit(target).path)
    return target


# ------------------------------------------------------------------------------------------
# Reading (the only IO)
# ------------------------------------------------------------------------------------------

def _json(text: str, location: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise SchemaProblem(f"{location} is not JSON: {error}") from None


def load_descriptor(software_url: str, timeout: float = FETCH_TIMEOUT,
                    reader: Reader = read_descriptor) -> Descriptor | None:
    """The descriptor of the release at `software_url` with its schemas read; None when the
    release has no descriptor; a SchemaProblem (a DescriptorProblem) when it cannot be used."""
    location = descriptor_location(software_url)
    text = reader(location, timeout)
    if text is None:
        return None
    raw = _json(text, location)
    serialisation = declared_serialisation(raw)
    entries = raw.get("software-type", {})
    if not isinstance(entries, dict):
        raise SchemaProblem("the descriptor's 'software-type' is not a JSON object")
    if len(entries) * 2 > MAX_SCHEMAS:
        raise SchemaProblem(f"the descriptor declares more than {MAX_SCHEMAS // 2} software types")
    loaded: dict[str, dict[str, Any]] = {}

    def schema(reference: Any) -> dict[str, Any] | None:
        if not isinstance(reference, str) or not reference:
            return None
        target = relative_location(location, reference)
        if target not in loaded:
            found = reader(target, timeout)
            if found is None:
                raise SchemaProblem(f"the schema {reference!r} does not exist")
            document = _json(found, target)
            if not isinstance(document, dict):
                raise SchemaProblem(f"the schema {reference!r} is not a JSON object")
            loaded[target] = document
        return loaded[target]

    types = tuple(_software_type(key, entry, schema) for key, entry in entries.items())
    return Descriptor(location=location, name=_text(raw.get("name")), description=_text(raw.get("description")),
                      serialisation=serialisation, types=types)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _software_type(key: str, entry: Any, schema: Callable[[Any], dict[str, Any] | None]) -> SoftwareType:
    if not isinstance(entry, dict):
        raise SchemaProblem(f"software type {key!r} is not a JSON object")
    name = entry.get("software-type")
    index = entry.get("index")
    return SoftwareType(
        name=name if isinstance(name, str) and name else key, key=key,
        title=_text(entry.get("title")), description=_text(entry.get("description")),
        shared=entry.get("shared") is True, index=index if isinstance(index, int) else None,
        request=schema(entry.get("request")), response=schema(entry.get("response")),
    )


# ------------------------------------------------------------------------------------------
# Pure rules
# ------------------------------------------------------------------------------------------

def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    found = schema.get("properties")
    return found if isinstance(found, dict) else {}


def declared_types(declaration: Any) -> list[str]:
    """The JSON types a property declares (``"type": "integer"`` or a list of them)."""
    if not isinstance(declaration, dict):
        return []
    kind = declaration.get("type")
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def _convert(value: str, types: list[str]) -> Any:
    if not types or "string" in types:
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


def instance_parameters(parameters: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the instance reads them (see the module doc: ``_`` decoded, text typed)."""
    if list(parameters) == [UNDERSCORE] and isinstance(parameters[UNDERSCORE], str):
        try:
            decoded = json.loads(parameters[UNDERSCORE])
        except ValueError:
            raise ParameterMismatch("parameter '_' does not hold JSON (json-in-xml)") from None
        if not isinstance(decoded, dict):
            raise ParameterMismatch("parameter '_' does not hold a JSON object (json-in-xml)")
        return decoded
    properties = _properties(schema)
    return {key: _convert(value, declared_types(properties.get(key))) if isinstance(value, str) else value
            for key, value in parameters.items()}


def fill_defaults(parameters: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`parameters` with the top-level default of each property they do not set."""
    result = dict(parameters)
    for key, declaration in _properties(schema).items():
        if key not in result and isinstance(declaration, dict) and "default" in declaration:
            result[key] = declaration["default"]
    return result


def defaults_used(parameters: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The defaults the instance gets for what `parameters` do not set."""
    return {key: value for key, value in fill_defaults(parameters, schema).items() if key not in parameters}


def first_error(parameters: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """One line saying why `parameters` do not match `schema`; None when they match.
    A schema that is not a valid JSON Schema (or whose ``$ref`` cannot be resolved) is a SchemaProblem."""
    import jsonschema
    from referencing.exceptions import Unresolvable

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
        error = jsonschema.exceptions.best_match(cls(schema).iter_errors(parameters))
    except jsonschema.SchemaError as problem:
        raise SchemaProblem(f"the schema is not a valid JSON Schema: {problem.message}") from None
    except Unresolvable as problem:
        raise SchemaProblem(f"the schema's $ref cannot be resolved: {problem}") from None
    if error is None:
        return None
    return _describe(error, schema)


def _describe(error: Any, schema: dict[str, Any]) -> str:
    path = [str(part) for part in error.absolute_path]
    if not path and error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = _properties(schema)
        extra = sorted(key for key in error.instance if key not in known)
        if extra:
            names = ", ".join(sorted(known)) or "none"
            return f"parameter {extra[0]!r} is not a parameter of this software type (known: {names})"
    if not path and error.validator == "required" and isinstance(error.validator_value, list):
        missing = [key for key in error.validator_value if isinstance(error.instance, dict)
                   and key not in error.instance]
        if missing:
            return f"parameter {missing[0]!r} is required"
    where = f"parameter {'.'.join(path)!r}: " if path else "parameters: "
    return where + " ".join(str(error.message).split())[:300]


def check_parameters(descriptor: Descriptor, software_type: str, parameters: dict[str, Any],
                     shared: bool = False) -> dict[str, Any] | None:
    """The parameters the instance will read (defaults filled) when `software_type` has a schema
    and they match it; None when there is no schema to check against. A mismatch raises
    ParameterMismatch naming the field; an unusable schema raises SchemaProblem."""
    entry = descriptor.find(software_type, shared)
    if entry is None or entry.request is None:
        return None
    values = instance_parameters(parameters, entry.request)
    problem = first_error(values, entry.request)
    if problem is not None:
        raise ParameterMismatch(problem)
    return fill_defaults(values, entry.request)


def parameter_rows(schema: dict[str, Any] | None) -> list[ParameterRow]:
    """The top-level parameters of `schema`, in its order."""
    if not schema:
        return []
    required = schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    rows = []
    for name, declaration in _properties(schema).items():
        declaration = declaration if isinstance(declaration, dict) else {}
        kind = "|".join(declared_types(declaration)) or ("enum" if "enum" in declaration else "any")
        description = _text(declaration.get("description")) or _text(declaration.get("title"))
        rows.append(ParameterRow(name=str(name), type=kind, required=name in required_names,
                                 default=declaration.get("default"), has_default="default" in declaration,
                                 description=" ".join(description.split())))
    return rows


def summary(descriptor: Descriptor) -> dict[str, Any]:
    """The descriptor as plain data: its software types and their parameters (for JSON output)."""
    return {
        "descriptor": descriptor.location, "name": descriptor.name, "description": descriptor.description,
        "serialisation": descriptor.serialisation,
        "software_types": [
            {"software_type": entry.name, "key": entry.key, "title": entry.title, "description": entry.description,
             "shared": entry.shared, "index": entry.index,
             "parameters": [{"name": row.name, "type": row.type, "required": row.required,
                             **({"default": row.default} if row.has_default else {}),
                             "description": row.description} for row in parameter_rows(entry.request)],
             "request": entry.request, "response": entry.response}
            for entry in sorted(descriptor.types, key=lambda e: (e.index is None, e.index or 0, e.key))
        ],
    }
