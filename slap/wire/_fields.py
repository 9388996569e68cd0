"""Reading one JSON object's fields with their types checked, and writing a contract back as JSON.

Every parser of `slap.wire` reads through `Fields`, so every refusal is one line that names the
document and the field (``compute_node_state.compute_partition_list[0].instance: field 'title'
is missing``). Types follow JSON Schema: an integer is not a bool, a number is an int or a float
that is not a bool. Fields a contract does not know are ignored (a newer peer may add some).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from partita.slap.errors import MalformedDocument

_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


def json_type(value: object) -> str:
    """The JSON name of `value`'s type, for error messages."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def to_json(value: Any) -> Any:
    """A contract (a dataclass) as JSON-able data: fields in declaration order, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


class Fields:
    """The fields of the JSON object `raw`, known in errors as `where`."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise MalformedDocument(f"{where} must be an object, not {json_type(raw)}")
        self.raw = raw
        self.where = where

    def fail(self, key: str, problem: str) -> MalformedDocument:
        return MalformedDocument(f"{self.where}: field '{key}' {problem}")

    def _get(self, key: str, expected: str, *kinds: type, nullable: bool = False) -> Any:
        if key not in self.raw:
            raise self.fail(key, "is missing")
        value = self.raw[key]
        if value is None and nullable:
            return None
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise self.fail(key, f"must be {expected}, not {json_type(value)}")
        return value

    def text(self, key: str) -> str:
        return self._get(key, "a string", str)

    def optional_text(self, key: str) -> str | None:
        return self._get(key, "a string or null", str, nullable=True)

    def choice(self, key: str, allowed: Collection[str], *, nullable: bool = False) -> Any:
        value = self.optional_text(key) if nullable else self.text(key)
        if value is not None and value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(sorted(allowed))}, not {value!r}")
        return value

    def boolean(self, key: str) -> bool:
        return self._get(key, "a boolean", bool)

    def integer(self, key: str) -> int:
        return self._get(key, "an integer", int)

    def number(self, key: str) -> float:
        return float(self._get(key, "a number", int, float))

    def mapping(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, "an object", dict))

    def array(self, key: str) -> list[Any]:
        return list(self._get(key, "an array", list))

    def objects(self, key: str) -> list[Fields]:
        """The objects of an array field, each readable as `Fields` (``where.key[n]``)."""
        return [Fields(item, f"{self.where}.{key}[{n}]") for n, item in enumerate(self.array(key))]

    def ip_list(self, key: str) -> tuple[tuple[str, str], ...]:
        """``[[interface, address], …]``."""
        pairs = []
        for n, pair in enumerate(self.array(key)):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise self.fail(f"{key}[{n}]", "must be an [interface, address] pair of strings")
            pairs.append((pair[0], pair[1]))
        return tuple(pairs)
