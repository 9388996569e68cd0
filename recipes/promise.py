"""``partita:promise``: write a promise plugin (``etc/plugin/<name>.py``) using a built-in check.

::

    [hello-web-answers]
    recipe = partita:promise
    check = url-available                 # socket-listening | url-available | command | file-exists
    url = http://127.0.1.1:8080/
    http-code = 200                       # url-available only, default 200
    period = 60                           # seconds between runs (default 60)
    timeout = 10                          # seconds a run may take (default 10)
    failure-threshold = 1                 # failures in a row before it counts (default 1)
    output = ${buildout:directory}/etc/plugin/hello-web-answers.py   # the default

The plugin is a few lines: it subclasses a class of `recipes.checks` to set ``period``,
``timeout`` and ``failure_threshold``, and holds the check's settings in ``config``. Every value
is written as a Python literal (``repr``), never pasted as code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from partita.recipes.common import fail, number, required, write_file

MODE = 0o644
DEFAULT_PERIOD = 60.0
DEFAULT_TIMEOUT = 10.0

# check name -> (class in recipes.checks, required settings, optional settings with defaults)
CHECKS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "socket-listening": ("SocketListening", ("host", "port"), {}),
    "url-available": ("UrlAvailable", ("url",), {"http-code": "200"}),
    "command": ("Command", ("command",), {}),
    "file-exists": ("FileExists", ("path",), {}),
}


def check_config(options: Any, check: str, name: str) -> dict[str, str]:
    """The settings of `check` from the section's options, validated."""
    _, needed, defaults = CHECKS[check]
    config = {key: required(options, key, name) for key in needed}
    for key, default in defaults.items():
        config[key] = options.get(key, "").strip() or default
    if check == "socket-listening" and not config["port"].isdigit():
        raise fail(f"[{name}] option 'port' must be a port number, not {config['port']!r}")
    if check == "url-available" and not config["http-code"].isdigit():
        raise fail(f"[{name}] option 'http-code' must be an HTTP status, not {config['http-code']!r}")
    return config


def failure_threshold(options: Any, name: str) -> int:
    value = options.get("failure-threshold", "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise fail(f"[{name}] option 'failure-threshold' must be a whole number >= 1, not {value!r}")
    return int(value)


def plugin_source(class_name: str, period: float, timeout: float, threshold: int,
                  config: dict[str, str]) -> str:
    """The plugin file: only literals made with repr()."""
    return (
        "# Promise plugin written by partita:promise; changes are lost at the next run.\n"
        f"from partita.recipes.checks import {class_name}\n"
        "\n\n"
        f"class Promise({class_name}):\n"
        f"    period = {period!r}\n"
        f"    timeout = {timeout!r}\n"
        f"    failure_threshold = {threshold!r}\n"
        "\n\n"
        f"config = {config!r}\n"
    )


class Recipe:
    """Writes the plugin at install and update."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        check = required(options, "check", name)
        if check not in CHECKS:
            raise fail(f"[{name}] option 'check' must be one of {', '.join(CHECKS)}, not {check!r}")
        plugin = (options.get("name", "").strip() or name).removesuffix(".py")
        if "/" in plugin or plugin.startswith("."):
            raise fail(f"[{name}] option 'name' must be a plain file name, not {plugin!r}")
        directory = buildout["buildout"]["directory"]
        output = options.get("output", "").strip() or f"{directory}/etc/plugin/{plugin}.py"
        self.path = Path(output) if Path(output).is_absolute() else Path(directory) / output
        options["output"] = str(self.path)
        self.source = plugin_source(
            CHECKS[check][0], number(options, "period", name, DEFAULT_PERIOD),
            number(options, "timeout", name, DEFAULT_TIMEOUT), failure_threshold(options, name),
            check_config(options, check, name),
        )

    def install(self) -> list[str]:
        write_file(self.path, self.source, MODE)
        return [str(self.path)]

    update = install
