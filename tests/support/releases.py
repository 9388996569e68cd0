"""A shipped release's descriptor and instance profile, as the release tests check them."""
from __future__ import annotations

import configparser
import json
from pathlib import Path
from typing import Any

import jsonschema


def default_type_schemas(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request and response schemas of the release's ``default`` software type
    (``software.cfg.json``), each checked to be a valid JSON Schema (draft 2020-12)."""
    descriptor = json.loads((directory / "software.cfg.json").read_text())
    default = descriptor["software-type"]["default"]
    schemas = tuple(json.loads((directory / default[key]).read_text()) for key in ("request", "response"))
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)
    return schemas[0], schemas[1]


def instance_profile(directory: Path, name: str = "instance.cfg.in") -> configparser.ConfigParser:
    """The release's instance profile as an ini file (no interpolation: ``${…}`` stays as written)."""
    profile = configparser.ConfigParser(interpolation=None)
    profile.read(directory / name)
    return profile
