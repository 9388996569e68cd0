"""partita:promise: the plugin files it writes, run as the node runs them (``python -m partita.slap.promise``)."""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import check_fails, check_ok, free_port, run_buildout

RUN_TIMEOUT = 30


def write_profile(directory: Path, *lines: str, section: str = "ready") -> Path:
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", f"parts = {section}", "newest = false",
        f"[{section}]", "recipe = partita:promise", *lines,
    ]) + "\n")
    return directory / "etc" / "plugin" / f"{section}.py"


def run_plugin(toolchain: Toolchain, plugin: Path) -> dict[str, Any]:
    """What the node's promise runner answers for `plugin`."""
    result = subprocess.run([str(toolchain.python), "-m", "partita.slap.promise", str(plugin)], capture_output=True,
                            text=True, timeout=RUN_TIMEOUT, cwd=plugin.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def install(toolchain: Toolchain, directory: Path, *lines: str) -> Path:
    plugin = write_profile(directory, *lines)
    check_ok(run_buildout(toolchain, directory))
    return plugin


def test_socket_listening(toolchain: Toolchain, tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        plugin = install(toolchain, tmp_path, "check = socket-listening", "host = 127.0.0.1", f"port = {port}")
        answer = run_plugin(toolchain, plugin)
        assert answer["ok"], answer
        assert answer["message"] == f"127.0.0.1:{port} accepts connections"
    answer = run_plugin(toolchain, plugin)
    assert not answer["ok"]
    assert answer["message"] == f"nothing accepts connections on 127.0.0.1:{port}: Connection refused"


def test_url_available_with_settings(toolchain: Toolchain, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    plugin = install(toolchain, tmp_path, "check = url-available", f"url = {url}", "http-code = 204",
                     "period = 30", "timeout = 4", "failure-threshold = 3")
    source = plugin.read_text()
    assert "from partita.recipes.checks import UrlAvailable" in source
    assert f"config = {{'url': {url!r}, 'http-code': '204'}}" in source
    answer = run_plugin(toolchain, plugin)
    assert (answer["period"], answer["timeout"], answer["failure_threshold"]) == (30.0, 4.0, 3)
    assert not answer["ok"]
    assert answer["message"].startswith(f"{url} does not answer: ")


def test_command_output_is_the_message(toolchain: Toolchain, tmp_path: Path) -> None:
    plugin = install(toolchain, tmp_path, "check = command", "command = echo all fine")
    assert run_plugin(toolchain, plugin) == {
        "ok": True, "message": "all fine", "period": 60.0, "timeout": 10.0, "failure_threshold": 1}
    plugin = install(toolchain, tmp_path, "check = command", "command = echo broken >&2; exit 3")
    answer = run_plugin(toolchain, plugin)
    assert (answer["ok"], answer["message"]) == (False, "the command exited with 3: broken")


def test_file_exists_and_a_chosen_name(toolchain: Toolchain, tmp_path: Path) -> None:
    target = tmp_path / "data"
    plugin = write_profile(tmp_path, "check = file-exists", f"path = {target}", "name = data-ready.py")
    check_ok(run_buildout(toolchain, tmp_path))
    plugin = plugin.with_name("data-ready.py")
    assert run_plugin(toolchain, plugin)["message"] == f"{target} does not exist"
    target.touch()
    assert run_plugin(toolchain, plugin)["message"] == f"{target} exists"


def test_option_text_is_never_pasted_as_code(toolchain: Toolchain, tmp_path: Path) -> None:
    command = """test "$(printf '%s' "a'b")" = "a'b" && echo '\"\"\"' ok"""
    plugin = install(toolchain, tmp_path, "check = command", f"command = {command}",
                     f"output = {tmp_path}/custom/place.py")
    assert not (tmp_path / "etc").exists()
    plugin = tmp_path / "custom" / "place.py"
    namespace: dict[str, Any] = {}
    exec(compile(plugin.read_text(), str(plugin), "exec"), namespace)  # our own output
    assert namespace["config"] == {"command": command}
    assert run_plugin(toolchain, plugin)["message"] == '""" ok'


@pytest.mark.parametrize(("lines", "expected"), [
    ([], "needs option 'check'"),
    (["check = ping"], "option 'check' must be one of socket-listening, url-available, command, file-exists"),
    (["check = url-available"], "needs option 'url'"),
    (["check = socket-listening", "host = 127.0.0.1", "port = http"], "option 'port' must be a port number"),
    (["check = command", "command = true", "period = -1"], "option 'period' must be a positive number"),
    (["check = command", "command = true", "failure-threshold = 0"], "option 'failure-threshold' must be"),
    (["check = command", "command = true", "name = ../x"], "option 'name' must be a plain file name"),
])
def test_bad_options_are_one_line_errors(toolchain: Toolchain, tmp_path: Path, lines: list[str],
                                         expected: str) -> None:
    write_profile(tmp_path, *lines)
    check_fails(run_buildout(toolchain, tmp_path), "[ready]", expected)
    assert not (tmp_path / "etc").exists()
