"""``partita:wrapper``: a ``#!/bin/sh`` script that ``exec``s a command, for services and tools.

::

    [hello-web]
    recipe = partita:wrapper
    command-line = ${buildout:executable} app.py --port 8080
    wrapper-path = ${buildout:directory}/etc/service/hello-web
    environment =
        LANG=C.UTF-8
    wait-for-files = ${buildout:directory}/etc/app.conf     # wait (bounded) until they exist
    hash-files = ${buildout:directory}/etc/app.conf         # a change of them changes the script
    pidfile = ${buildout:directory}/var/run/app.pid         # refuse to start twice

``command-line`` is split like a shell would (``shlex``) and each argument is quoted again in the
script, so no shell expansion happens at run time; arguments given to the script are appended.

``hash-files``: the script carries the line ``# hash-files sha256: <hex>``, a digest of those
files' paths and contents, computed at install and update. When one of them changes, the script
changes, and the node restarts a service whose script changed. The part producing those files
must be installed first: reference it (``${greeting:output}``), which orders the parts.
"""
from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import Any

from partita.recipes.common import fail, number, output_path, words, write_file

MODE = 0o750
WAIT_TIMEOUT = 60.0
WAIT_STEP = 0.1
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def split_command(command_line: str, name: str) -> list[str]:
    try:
        arguments = shlex.split(command_line)
    except ValueError as error:
        raise fail(f"[{name}] cannot split command-line: {error}") from None
    if not arguments:
        raise fail(f"[{name}] needs option 'command-line'")
    return arguments


def parse_environment(text: str, name: str) -> list[tuple[str, str]]:
    """``NAME=value`` lines (blank lines ignored)."""
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not _NAME.match(key):
            raise fail(f"[{name}] environment lines must be NAME=value, not {line!r}")
        result.append((key, value.strip()))
    return result


def files_digest(paths: list[str], name: str) -> str:
    """sha256 over each file's path and content, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise fail(f"[{name}] cannot read hash-files {path}: {error.strerror or error}") from None
        digest.update(f"{path}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def wait_lines(paths: list[str], timeout: float) -> list[str]:
    """Shell lines waiting until every path exists, at most `timeout` seconds."""
    condition = " || ".join(f"[ ! -e {shlex.quote(path)} ]" for path in paths)
    steps = max(int(timeout / WAIT_STEP), 1)
    message = shlex.quote(f"gave up after {timeout:g}s waiting for: {' '.join(paths)}")
    return [
        "partita_waited=0",
        f"while {condition}; do",
        f"  if [ \"$partita_waited\" -ge {steps} ]; then echo {message} >&2; exit 1; fi",
        f"  sleep {WAIT_STEP:g}",
        "  partita_waited=$((partita_waited + 1))",
        "done",
    ]


def pidfile_lines(pidfile: str) -> list[str]:
    """Shell lines refusing to start when the pid file names a live process, then recording
    this one (``exec`` keeps the pid)."""
    quoted = shlex.quote(pidfile)
    return [
        f"if [ -s {quoted} ] && kill -0 \"$(cat {quoted})\" 2>/dev/null; then",
        f"  echo \"already running with pid $(cat {quoted}) ({quoted})\" >&2",
        "  exit 1",
        "fi",
        f"mkdir -p {shlex.quote(str(Path(pidfile).parent))}",
        f"echo $$ > {quoted}",
    ]


class Recipe:
    """Writes the script at install and update (``hash-files`` is read then)."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        self.name = name
        self.arguments = split_command(options.get("command-line", ""), name)
        self.path = output_path(options, "wrapper-path", name, buildout["buildout"]["directory"])
        options["wrapper-path"] = str(self.path)
        self.environment = parse_environment(options.get("environment", ""), name)
        self.wait_for = words(options.get("wait-for-files", ""))
        self.wait_timeout = number(options, "wait-for-files-timeout", name, WAIT_TIMEOUT)
        self.hash_files = words(options.get("hash-files", ""))
        self.pidfile = options.get("pidfile", "").strip()

    def script(self) -> str:
        lines = ["#!/bin/sh", "# Written by partita:wrapper; changes are lost at the next run."]
        if self.hash_files:
            lines.append(f"# hash-files sha256: {files_digest(self.hash_files, self.name)}")
        lines.append("set -e")
        lines += [f"export {key}={shlex.quote(value)}" for key, value in self.environment]
        if self.wait_for:
            lines += wait_lines(self.wait_for, self.wait_timeout)
        if self.pidfile:
            lines += pidfile_lines(self.pidfile)
        lines.append("exec " + " ".join(shlex.quote(argument) for argument in self.arguments) + ' "$@"')
        return "\n".join(lines) + "\n"

    def install(self) -> list[str]:
        write_file(self.path, self.script(), MODE)
        return [str(self.path)]

    update = install
