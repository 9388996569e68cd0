"""The JSON API's OpenAPI document: loading it once, validating bodies against it, serving it.

Every JSON API method is ``POST /<method name>``; its body must match the schema of
``paths["/<method name>"].post.requestBody`` in ``openapi.yaml`` (JSON Schema 2020-12, the dialect
of OpenAPI 3.1). ``$ref``s resolve inside the document, which is registered as one resource.
`validate_request` turns the most relevant schema error into a `ValidationError` whose message is
the one slapproxy gives (``'instance_guid' is a required property``), followed by where it is when
it is not at the top level. `validate_response` checks an answer against the documented response
(the tests run it on every answer).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from partita.slap.errors import ValidationError

DOCUMENT_PATH = Path(__file__).resolve().with_name("openapi.yaml")
BASE_URI = "urn:partita:openapi"
MAX_MESSAGE = 500


@functools.cache
def document_text() -> str:
    """The document as written (YAML)."""
    return DOCUMENT_PATH.read_text(encoding="utf-8")


@functools.cache
def document() -> dict[str, Any]:
    """The document, parsed."""
    loaded = yaml.safe_load(document_text())
    if not isinstance(loaded, dict):
        raise RuntimeError(f"{DOCUMENT_PATH} is not an OpenAPI document")
    return loaded


@functools.cache
def document_json() -> str:
    return json.dumps(document(), indent=1)


def documented_methods() -> list[str]:
    """The method names (paths without their leading slash) the document describes."""
    return [path[1:] for path in document()["paths"]]


@functools.cache
def registry() -> Registry:
    resource = Resource.from_contents(document(), default_specification=DRAFT202012)
    return Registry().with_resource(BASE_URI, resource)


def _pointer(*parts: str) -> str:
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return BASE_URI + "#/" + "/".join(escaped)


def validator_at(*parts: str) -> Draft202012Validator:
    """A validator for the schema at this JSON pointer (given as unescaped parts) in the document."""
    return Draft202012Validator({"$ref": _pointer(*parts)}, registry=registry())


@functools.cache
def request_validator(method: str) -> Draft202012Validator:
    schema_path = ("paths", "/" + method, "post", "requestBody", "content", "application/json", "schema")
    return validator_at(*schema_path)


@functools.cache
def response_validator(method: str, status: int) -> Draft202012Validator:
    responses = document()["paths"]["/" + method]["post"]["responses"]
    answer = responses.get(str(status))
    if answer is None:
        raise KeyError(f"{method} documents no {status} answer")
    if "$ref" in answer:  # '#/components/responses/Name'
        parts = answer["$ref"].removeprefix("#/").split("/")
        return validator_at(*parts, "content", "application/json", "schema")
    return validator_at("paths", "/" + method, "post", "responses", str(status),
                        "content", "application/json", "schema")


def validate_request(method: str, body: Any) -> None:
    """Raise ValidationError (400) unless `body` matches the method's documented request schema."""
    error = best_match(request_validator(method).iter_errors(body))
    if error is not None:
        raise ValidationError(describe(error))


def validate_response(method: str, status: int, body: Any) -> None:
    """Raise jsonschema's ValidationError unless `body` is a documented answer of `method`."""
    error = best_match(response_validator(method, status).iter_errors(body))
    if error is not None:
        raise error


def describe(error: Any) -> str:
    """A schema error as one readable line: the message, then where (unless at the top)."""
    message = error.message
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    where = error.json_path
    return message if where == "$" else f"{message} (at {where})"
