"""A software release's descriptor: ``software.cfg.json`` next to its ``software.cfg``.

SlapOS reads it at the release's URL plus ``.json`` (`reference/slap-protocol.md` §2.3): a local
path, a ``file://`` URL or an http(s) URL. The client needs one thing from it, the declared
``"serialisation"`` of instance parameters:

- ``xml``: parameters are a flat mapping of strings (the instance reads ``configuration.port``);
- ``json-in-xml``: all parameters are sent as one parameter ``_`` holding their JSON.

A release without a descriptor (no file, HTTP 404) declares nothing: `serialisation_of` answers
None and the caller keeps its own default. A descriptor that cannot be read or is not what SlapOS
writes (bad JSON, an unknown serialisation, a host that does not answer within `FETCH_TIMEOUT`)
is a warning in the log, and also answers None: SlapOS's client only warns too.

`declared_serialisation` is the pure rule; `read_descriptor` the IO around it.
"""
from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from partita.slap.errors import ValidationError

log = logging.getLogger(__name__)

XML = "xml"
JSON_IN_XML = "json-in-xml"
SERIALISATIONS = (XML, JSON_IN_XML)
SUFFIX = ".json"
FETCH_TIMEOUT = 5.0
MAX_BYTES = 1024 * 1024


class DescriptorProblem(ValidationError):
    """The descriptor exists but cannot be used (`serialisation_of` logs it as a warning)."""


def descriptor_location(software_url: str) -> str:
    """Where a release's descriptor is: its URL (or path) plus ``.json``."""
    return software_url + SUFFIX


def declared_serialisation(descriptor: Any) -> str | None:
    """The serialisation a descriptor declares; None when it declares none.

    A value other than `SERIALISATIONS` is a DescriptorProblem naming it."""
    if not isinstance(descriptor, dict):
        raise DescriptorProblem(f"it holds {type(descriptor).__name__}, not a JSON object")
    value = descriptor.get("serialisation")
    if value is None:
        return None
    if value not in SERIALISATIONS:
        raise DescriptorProblem(f"unknown serialisation {value!r} (expected xml or json-in-xml)")
    return str(value)


def serialisation_of(software_url: str, timeout: float = FETCH_TIMEOUT) -> str | None:
    """The serialisation the release at `software_url` declares, or None (see the module doc)."""
    location = descriptor_location(software_url)
    try:
        text = read_descriptor(location, timeout)
        if text is None:
            return None
        try:
            descriptor = json.loads(text)
        except ValueError as error:
            raise DescriptorProblem(f"not JSON: {error}") from None
        return declared_serialisation(descriptor)
    except DescriptorProblem as problem:
        log.warning("ignoring the software release descriptor %s: %s", location, problem)
        return None


def read_descriptor(location: str, timeout: float = FETCH_TIMEOUT) -> str | None:
    """The descriptor's text; None when there is none; a DescriptorProblem when it cannot be read."""
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch(location, timeout)
    if scheme == "file":
        return _read_file(Path(unquote(urlsplit(location).path)))
    if scheme and len(scheme) > 1:  # "c:" would be a drive letter, not a scheme
        raise DescriptorProblem(f"cannot read a {scheme}: URL")
    return _read_file(Path(location))


def _read_file(path: Path) -> str | None:
    """A regular file's text: opened without blocking (a FIFO or a device named by a release URL
    never holds the reader), at most MAX_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DescriptorProblem(error.strerror or str(error)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DescriptorProblem(f"{path} is not a regular file")
        data = os.read(fd, MAX_BYTES + 1)
        while data and len(data) <= MAX_BYTES:
            more = os.read(fd, MAX_BYTES + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as error:
        raise DescriptorProblem(error.strerror or str(error)) from None
    finally:
        os.close(fd)
    return _text(data)


def _fetch(url: str, timeout: float) -> str | None:
    try:
        with requests.get(url, timeout=(timeout, timeout), stream=True,
                          headers={"Accept": "application/json"}) as response:
            if response.status_code in (404, 410):
                return None
            if response.status_code != 200:
                raise DescriptorProblem(f"HTTP {response.status_code}")
            data = b""
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                if len(data) > MAX_BYTES:
                    break
    except requests.Timeout:
        raise DescriptorProblem(f"no answer within {timeout:g}s") from None
    except requests.RequestException as error:
        raise DescriptorProblem(type(error).__name__) from None
    return _text(data)


def _text(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise DescriptorProblem(f"larger than {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DescriptorProblem("not UTF-8") from None
