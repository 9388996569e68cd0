"""`slapos proxy show` stays readable at 80 columns (issue 11): a real proxy, long titles, URLs and
parameters; no line wider than the terminal, the important fields still there."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proxy.test_proxy_commands import format_local, run
from tests.support.server import ServerProcess, start

LONG_SR = ("https://software.example.org/releases/research-group/a-rather-long-project-name/"
           "version-2026.12/software.cfg")
LONG_TITLE = "a-very-long-instance-title-for-the-group-experiment-number-seven"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start(tmp_path, ("proxy", "start"))
    try:
        yield server
    finally:
        server.stop()


def test_show_fits_80_columns_and_keeps_the_important_fields(proxy: ServerProcess) -> None:
    format_local(proxy.url, 2)
    cfg = str(proxy.config_path)
    run("supply", LONG_SR, "local_computer", "--cfg", cfg)
    run("request", LONG_TITLE, LONG_SR, "--cfg", cfg,
        "--parameters", "greeting=Bonjour", "--parameters", "motd=" + "x" * 150)
    run("request", "hello", LONG_SR, "--cfg", cfg)

    table = run("proxy", "show", "--cfg", cfg, env={"COLUMNS": "80"}).stdout
    lines = table.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, table
    for section in ("Computers", "Partitions", "Instances", "Parameters", "Supplies", "Connections"):
        assert section in lines, table
    assert "local_computer" in table and "slappart0" in table and "slappart1" in table
    assert "busy" in table and "127.0.1.1" in table
    assert "hello" in table and LONG_TITLE[:5] in table and LONG_TITLE[-5:] in table
    assert "https://" in table and "/software.cfg" in table  # a URL cut in the middle keeps both ends
    assert "greeting" in table and "Bonjour" in table and "motd" in table
    assert "…" in table  # something was shortened, not wrapped
    assert "  (none)" in lines  # no connection parameters published

    only = run("proxy", "show", "--cfg", cfg, "--instances", env={"COLUMNS": "80"}).stdout
    assert only.splitlines()[0] == "Instances" and "Parameters" in only and "Supplies" not in only
    assert max(len(line) for line in only.splitlines()) <= 80

    whole = json.loads(run("proxy", "show", "--cfg", cfg, "--format", "json", env={"COLUMNS": "80"}).stdout)
    titles = {instance["title"]: instance for instance in whole["instances"]}
    assert titles[LONG_TITLE]["software_release"] == LONG_SR  # JSON keeps every value whole
    assert titles[LONG_TITLE]["parameters"]["motd"] == "x" * 150
