"""``partita:switch-softwaretype``: run the instance profile of the instance's software type.

::

    [slap-configuration]
    recipe = partita:slapconfiguration

    [switch-softwaretype]
    recipe = partita:switch-softwaretype
    default = ${instance-default:output}          # a path (or file:// or http(s):// URL)
    replicate = ${instance-replicate:output}

The software type is ``[slap-configuration] software-type`` (or the ``software-type`` option). The
recipe runs a second buildout on the chosen profile, in the same directory, as SlapOS's recipe
does: it writes ``.switch-<section>.cfg`` extending the profile, with the parent's directories,
eggs and ``newest`` setting, its own installed file (``.installed-<section>.cfg``, so the parts of
a previous type are uninstalled when the type changes) and a copy of ``[slap-connection]``,
``[slap_connection]``, ``[storage-configuration]`` and ``[network-information]``; the profile's
own ``partita:slapconfiguration`` reads the same instance file. It runs at every install and
update, with the toolchain's ``buildout`` and a deadline (option ``timeout``, seconds, default
3600); its output goes to this buildout's output and its ``Error:`` line becomes this part's.

A type the section does not name fails with one line listing the types it knows. SlapOS's
``RootSoftwareInstance`` falls back to ``default``.

**Uninstall.** When the part itself goes (the instance profile no longer has it), buildout runs
`uninstall` (the ``zc.buildout.uninstall`` entry point): it runs the sub-buildout with no parts on
the same installed file, so the parts of the last type run their own uninstall steps and their
files are removed; then the two ``.switch``/``.installed`` files go. A type change needs nothing
more: the new profile's buildout uninstalls the parts the old type had and the new one lacks
before it installs its own.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from partita.recipes.common import fail, number, write_file

RESERVED = ("recipe", "software-type", "timeout")
UNINSTALL_OPTION = "_uninstall-profile"  # kept in .installed.cfg for `uninstall`
COPIED_SECTIONS = ("slap-connection", "slap_connection", "storage-configuration", "network-information")
COPIED_BUILDOUT = ("directory", "bin-directory", "parts-directory", "develop-eggs-directory",
                   "eggs-directory", "newest", "offline", "download-cache", "extends-cache",
                   "allow-picked-versions", "log-level")
ROOT_TYPE = "RootSoftwareInstance"
DEFAULT_TIMEOUT = 3600.0


def known_types(options: Any) -> dict[str, str]:
    """The software types the section maps, to their profiles."""
    return {key: options[key].strip() for key in options
            if key not in RESERVED and not key.startswith("_")}


def choose_profile(types: dict[str, str], software_type: str, section: str) -> str:
    """The profile of `software_type` (``RootSoftwareInstance`` falls back to ``default``)."""
    profile = types.get(software_type) or (types.get("default") if software_type == ROOT_TYPE else None)
    if not profile:
        known = ", ".join(sorted(types)) or "none"
        raise fail(f"[{section}] unknown software type {software_type!r}; this release knows: {known}")
    return profile


def sub_profile(profile: str | None, name: str, parent: dict[str, str], sections: dict[str, dict[str, str]]) -> str:
    """The text of the configuration file the sub-buildout runs (`profile` None: no parts, to
    uninstall those of the last run)."""
    def lines(values: dict[str, str]) -> list[str]:
        return [f"{key} = {_escape(value)}" for key, value in sorted(values.items())]

    settings = {key: value for key, value in parent.items() if key in COPIED_BUILDOUT}
    settings.update({"eggs-directory-version": "", "installed": str(installed_file(parent["directory"], name))})
    settings.update({"extends": profile} if profile is not None else {"parts": ""})
    text = ["# Written by partita:switch-softwaretype; rewritten at every run.", "[buildout]", *lines(settings)]
    for section, values in sections.items():
        text += ["", f"[{section}]", *lines(values)]
    return "\n".join(text) + "\n"


def installed_file(directory: str, name: str) -> Path:
    return Path(directory) / f".installed-{name}.cfg"


def _escape(value: str) -> str:
    """A value as buildout reads it back: the lines after the first indented."""
    return "\n    ".join(value.splitlines())


def profile_location(profile: str, directory: str) -> str:
    """A relative path made absolute against the buildout directory; URLs as they are."""
    if urlsplit(profile).scheme or profile.startswith("/"):
        return profile
    return str(Path(directory) / profile)


def buildout_command() -> str:
    """The ``buildout`` script of the Python running this buildout (the node's toolchain)."""
    script = Path(sys.executable).parent / "buildout"
    if not script.is_file():
        raise fail(f"partita:switch-softwaretype needs zc.buildout's script next to {sys.executable}")
    return str(script)


def last_error(output: str) -> str:
    lines = [line[len("Error: "):] for line in output.splitlines() if line.startswith("Error: ")]
    return lines[-1] if lines else (output.strip().splitlines() or ["no output"])[-1]


class Recipe:
    """Chooses the profile when the section is set up; runs it at install and update."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        self.name = name
        software_type = options.get("software-type", "").strip()
        if not software_type:
            try:
                software_type = buildout["slap-configuration"]["software-type"]
            except KeyError:
                raise fail(f"[{name}] needs a [slap-configuration] section (recipe = partita:slapconfiguration) "
                           "or a 'software-type' option") from None
        directory = buildout["buildout"]["directory"]
        self.timeout = number(options, "timeout", name, DEFAULT_TIMEOUT)
        self.software_type = software_type
        self.profile = profile_location(choose_profile(known_types(options), software_type, name), directory)
        parent = {key: buildout["buildout"][key] for key in COPIED_BUILDOUT if key in buildout["buildout"]}
        sections = {}
        for section in COPIED_SECTIONS:
            try:
                found = buildout[section]
            except KeyError:
                continue
            sections[section] = {key: found[key] for key in found}
        self.config = Path(directory) / f".switch-{name}.cfg"
        self.text = sub_profile(self.profile, name, parent, sections)
        # only what never changes between runs: a changed option makes buildout reinstall the part
        options[UNINSTALL_OPTION] = sub_profile(None, name, parent, {})

    def install(self) -> list[str]:
        run_sub_buildout(self.config, self.text, self.timeout, f"[{self.name}] the {self.software_type!r} profile")
        return []

    update = install


def run_sub_buildout(config: Path, text: str, timeout: float, what: str) -> None:
    """Write `config` and run buildout on it; its output goes to this buildout's."""
    write_file(config, text, 0o644)
    command = [buildout_command(), "-c", str(config)]
    try:
        completed = subprocess.run(command, cwd=config.parent, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise fail(f"{what} did not finish within {timeout:g}s") from None
    sys.stdout.write(completed.stdout + completed.stderr)
    sys.stdout.flush()
    if completed.returncode != 0:
        raise fail(f"{what} failed: {last_error(completed.stdout + completed.stderr)}")


def uninstall(name: str, options: Mapping[str, str]) -> None:
    """The ``zc.buildout.uninstall`` step: uninstall the sub-buildout's parts, then its files."""
    text = options.get(UNINSTALL_OPTION, "")
    directory = next((line.partition("=")[2].strip() for line in text.splitlines()
                      if line.startswith("directory =")), "")
    if not directory:
        return  # installed before this step existed: nothing known to uninstall
    installed = installed_file(directory, name)
    config = Path(directory) / f".switch-{name}.cfg"
    if installed.is_file():
        run_sub_buildout(config, text, number(options, "timeout", name, DEFAULT_TIMEOUT),
                         f"[{name}] uninstalling the software type's parts")
    for path in (config, installed):
        path.unlink(missing_ok=True)
