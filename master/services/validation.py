"""Checks of user input, as pure functions: each returns the cleaned value or raises ValidationError.

Sizes (every one a 400 INVALID, except an oversized parameter set, 413 TOO_LARGE):

| what | limit |
|---|---|
| title, software type, shared-instance reference, SLA key | `MAX_TITLE` characters |
| computer and partition reference | `MAX_REFERENCE` characters |
| software release URL, SLA value | `MAX_URL` characters |
| instance or connection parameters, as compact JSON in UTF-8 | `MAX_PARAMETERS_BYTES` |
| SLA | `MAX_SLA_ENTRIES` entries |

Look-alike names: titles are normalised to Unicode NFC; titles and references refuse control
(Cc) and format (Cf: zero-width joiners and spaces, bidirectional overrides, the BOM) characters,
so two names that look the same are the same name. Computer and partition references name
directories and users on nodes: they are refused, not rewritten, when they are not in NFC.
"""
from __future__ import annotations

import json
import posixpath
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from partita.slap.errors import TooLarge, ValidationError

MAX_TITLE = 255
MAX_REFERENCE = 255
MAX_URL = 2048
MAX_PARAMETERS_BYTES = 1024 * 1024
MAX_SLA_ENTRIES = 64
_INVISIBLE_CATEGORIES = ("Cc", "Cf")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# What XML 1.0 cannot carry: everything Partita stores must travel over SLAP XML too.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_DEPTH = 32
URL_SCHEMES = ("http", "https", "file")


def invisible_character(text: str) -> str | None:
    """The first control (Cc) or format (Cf) character of `text`, lone surrogate or U+FFFE/U+FFFF."""
    if text.isprintable() and text.isascii():
        return None  # the common case, without a walk in Python
    for char in text:
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES or _CONTROL.match(char):
            return char
    return None


def _check_name(text: str, what: str, limit: int) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"{what} must not be empty")
    if len(text) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters")
    char = invisible_character(text)
    if char is not None:
        raise ValidationError(
            f"{what} must not contain control or format characters (U+{ord(char):04X} "
            f"{unicodedata.name(char, 'unnamed')}): {text[:80]!r}")


def clean_title(title: str, what: str = "title") -> str:
    """A title (or a software type, a shared-instance reference): NFC, no Cc/Cf character."""
    _check_name(title, what, MAX_TITLE)
    return unicodedata.normalize("NFC", title)


def clean_reference(reference: str, what: str) -> str:
    """Computer and partition references also name files on nodes: no slashes, no dot-dot, no
    Cc/Cf character, already in NFC (a node would not find a rewritten one)."""
    _check_name(reference, what, MAX_REFERENCE)
    if not unicodedata.is_normalized("NFC", reference):
        raise ValidationError(f"{what} must be in Unicode normal form NFC: {reference!r}")
    if "/" in reference or "\\" in reference or reference in (".", ".."):
        raise ValidationError(f"{what} must not contain path separators: {reference!r}")
    return reference


def check_reference_characters(reference: str, what: str) -> str:
    """A reference used to look something up: no Cc/Cf character and in NFC (400 otherwise), so a
    look-alike of a real name is refused rather than answered "unknown"."""
    char = invisible_character(reference)
    if char is not None:
        raise ValidationError(
            f"{what} must not contain control or format characters (U+{ord(char):04X} "
            f"{unicodedata.name(char, 'unnamed')}): {reference[:80]!r}")
    if not unicodedata.is_normalized("NFC", reference):
        raise ValidationError(f"{what} must be in Unicode normal form NFC: {reference[:80]!r}")
    return reference


def parameters_size(parameters: Mapping[str, Any]) -> int:
    """The size of `parameters` as compact JSON in UTF-8 (how quotas count them)."""
    try:
        text = json.dumps(parameters, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = repr(parameters)
    return len(text.encode("utf-8", "surrogatepass"))


def clean_software_release(url: str) -> str:
    """An http(s) or file URL, or an absolute local path, with no '..' segment."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("software release URL must not be empty")
    if len(url) > MAX_URL:
        raise ValidationError(f"software release URL is longer than {MAX_URL} characters")
    if _CONTROL.search(url) or " " in url:
        raise ValidationError("software release URL must not contain spaces or control characters")
    if url.startswith("/"):
        path = url
    else:
        parts = urlsplit(url)
        if parts.scheme not in URL_SCHEMES or (parts.scheme != "file" and not parts.netloc):
            raise ValidationError(
                f"software release must be an http(s) or file URL or an absolute path: {url!r}"
            )
        path = parts.path
    if ".." in path.split("/"):
        raise ValidationError(f"software release URL must not contain '..': {url!r}")
    if url.startswith("/") and posixpath.normpath(url) != url.rstrip("/"):
        raise ValidationError(f"software release path is not normalised: {url!r}")
    return url


def clean_software_type(software_type: str | None) -> str:
    if software_type is None or software_type == "" or software_type == "None":
        return "default"
    return clean_title(software_type, "software type")


def clean_parameters(parameters: Any, what: str = "parameters") -> dict[str, Any]:
    """A mapping of non-empty string keys; values are strings (SLAP) or JSON values (JSON API),
    with finite numbers and only characters XML can carry."""
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ValidationError(f"{what} must be a mapping")
    for key in parameters:
        if not isinstance(key, str) or not key:
            raise ValidationError(f"{what} keys must be non-empty strings")
    _check_value(parameters, what, 0)
    size = parameters_size(parameters)
    if size > MAX_PARAMETERS_BYTES:
        raise TooLarge(f"{what} take {size} bytes as JSON, over the limit of {MAX_PARAMETERS_BYTES} bytes")
    return dict(parameters)


def _check_value(value: Any, what: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValidationError(f"{what} are nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _NOT_IN_XML.search(value):
            raise ValidationError(f"{what} contain a character that XML cannot carry")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"{what} must be finite numbers")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_value(key, what, depth + 1)
            _check_value(item, what, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_value(item, what, depth + 1)


def clean_text(text: str) -> str:
    """Free text from a node (a log tail, a message): what XML cannot carry becomes U+FFFD."""
    return _NOT_IN_XML.sub("\ufffd", text)


def clean_label(value: str, what: str, limit: int = 64) -> str:
    """A short technical string (an interface name, a netmask): printable, at most `limit` long."""
    if len(value) > limit or _CONTROL.search(value):
        raise ValidationError(f"{what} must be at most {limit} printable characters")
    return value


def clean_sla(sla: Any) -> dict[str, str]:
    if sla is None:
        return {}
    if not isinstance(sla, Mapping):
        raise ValidationError("SLA must be a mapping")
    if len(sla) > MAX_SLA_ENTRIES:
        raise ValidationError(f"SLA has {len(sla)} entries, over the limit of {MAX_SLA_ENTRIES}")
    cleaned: dict[str, str] = {}
    for key, value in sla.items():
        if value is None or value == "None":
            continue
        if not isinstance(key, str) or not isinstance(value, str | int | float):
            raise ValidationError(f"SLA {key!r} must be a string")
        cleaned[clean_label(key, "SLA keys", MAX_TITLE)] = clean_label(str(value), f"SLA {key!r}", MAX_URL)
    return cleaned
