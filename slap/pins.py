"""Pinned wheels of a software release: what ``partita:pip`` parts install, read without buildout.

A ``partita:pip`` part lists ``name==version`` in ``packages`` and the sha256 of every file pip may
pick for each in ``sha256-<name>`` (`parse_pins`). The recipe installs them with pip's
``--require-hashes`` (`requirements`). Before that, whoever fills a package index for nodes that
reach nothing else (``slapos master packages fetch --release``, ``slapos experiment up
--software``) needs the same list: `release_requirements` reads a release's profile and the local
profiles it extends, as text (a buildout profile is an INI file), and collects every
``partita:pip`` part. Parts whose options are built from ``${...}`` references cannot be read this
way and are refused with their name.
"""
from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from pathlib import Path

from partita.slap.errors import ConfigurationError

RECIPE = "partita:pip"
MAX_EXTENDS = 32
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)\Z")
_SHA256 = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})\Z")

Pin = tuple[str, str, tuple[str, ...]]  # (normalised name, version, sha256 digests)


class PinError(ConfigurationError):
    code = "BAD_PINS"


def normalise(name: str) -> str:
    """A project name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(packages: str, options: Mapping[str, str], section: str) -> list[Pin]:
    """``(name, version, sha256 digests)`` of each ``name==version`` word of `packages`, sorted."""
    pins = []
    seen = set()
    for word in packages.split():
        match = _PIN.match(word)
        if not match:
            raise PinError(f"[{section}] packages must be pinned as name==version, not {word!r}")
        name, version = normalise(match[1]), match[2]
        if name in seen:
            raise PinError(f"[{section}] package {name} is listed twice")
        seen.add(name)
        option = f"sha256-{name}"
        hashes = options.get(option, "").split()
        if not hashes:
            raise PinError(f"[{section}] needs option '{option}': the sha256 of each file pip may install "
                           f"for {word}")
        digests = []
        for value in hashes:
            found = _SHA256.match(value)
            if not found:
                raise PinError(f"[{section}] option '{option}' holds {value!r}, not a sha256 (64 hex digits)")
            digests.append(found[1].lower())
        pins.append((name, version, tuple(sorted(set(digests)))))
    if not pins:
        raise PinError(f"[{section}] needs option 'packages'")
    return sorted(pins)


def requirements(pins: list[Pin]) -> str:
    """The requirements file pip reads in ``--require-hashes`` mode."""
    return "".join(f"{name}=={version} " + " ".join(f"--hash=sha256:{digest}" for digest in digests) + "\n"
                   for name, version, digests in pins)


def profile_pins(text: str, where: str) -> tuple[list[Pin], list[str]]:
    """The pins of the ``partita:pip`` parts of one profile's `text`, and what it extends."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",),
                                       comment_prefixes=("#", ";"), inline_comment_prefixes=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=where)
    except configparser.Error as error:
        raise PinError(f"{where}: not a buildout profile ({error.message.splitlines()[0]})") from None
    pins: list[Pin] = []
    for section in parser.sections():
        options = {key.strip(): value.strip() for key, value in parser.items(section)}
        if options.get("recipe") != RECIPE:
            continue
        if any("${" in value for key, value in options.items() if key == "packages" or key.startswith("sha256-")):
            raise PinError(f"{where}: [{section}] builds its pins from ${{...}} references; list them plainly")
        pins.extend(parse_pins(options.get("packages", ""), options, section))
    extends = parser.get("buildout", "extends", fallback="").split()
    return pins, extends


def release_requirements(profile: Path) -> str:
    """The requirements (`requirements`) of every ``partita:pip`` part of the release whose profile
    is the local file `profile`, following its local ``extends``; a PinError names what is wrong."""
    pins: dict[str, Pin] = {}
    queue, seen = [profile.absolute()], set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        if len(seen) > MAX_EXTENDS:
            raise PinError(f"{profile}: more than {MAX_EXTENDS} extended profiles")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PinError(f"cannot read the profile {path}: {getattr(error, 'strerror', None) or error}") from None
        found, extends = profile_pins(text, str(path))
        for pin in found:
            if pins.setdefault(pin[0], pin) != pin:
                raise PinError(f"{path}: {pin[0]} is pinned twice, differently")
        for name in extends:
            if "://" in name:
                raise PinError(f"{path} extends {name}: only local profiles are read")
            queue.append((path.parent / name).absolute())
    return requirements(sorted(pins.values()))
