"""Fixtures of the compatibility tests: a Partita server (proxy on SQLite, master on PostgreSQL)
driven by the real slapos.core 1.26.1 client library, CLI and node (the peer).

Every test that takes ``server`` runs twice: against ``slapos proxy start`` and against
``slapos master start`` on PostgreSQL with two workers. When such a test fails, the server's log is
printed in the teardown section of the report, so that a server-side traceback sits next to the
failing assertion.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import server as servers
from tests.support.peer import Peer

PEER_SCRIPTS = Path(__file__).parent / "peer_scripts"
#: Deadline of one batch of library calls in the peer.
STEPS_TIMEOUT = 120
#: Deadline of one client CLI command.
CLI_TIMEOUT = 90
COMPUTER_ID = "local_computer"


@dataclass
class CompatServer:
    """A running Partita server under test, and how the peer reaches it."""

    kind: str  # "proxy" or "master"
    process: servers.ServerProcess
    directory: Path

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def rest_url(self) -> str:
        return self.process.url + "/hateoas"

    def log_tail(self, lines: int = 200) -> str:
        return "\n".join(self.process.log().splitlines()[-lines:])

    def client_config(self) -> Path:
        """A client slapos.cfg for `slapos request/supply/service ...` (HATEOAS without probing)."""
        path = self.directory / "client.cfg"
        if not path.exists():
            path.write_text(f"[slapos]\nmaster_url = {self.url}\nmaster_rest_url = {self.rest_url}\n")
        return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Remember each phase's report on the item, so that fixtures know whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"compat_report_{report.when}", report)


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"compat_report_{when}", None), "failed", False)
               for when in ("setup", "call"))


@pytest.fixture(params=["proxy", pytest.param("master", marks=pytest.mark.postgresql)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CompatServer]:
    """A fresh Partita proxy (SQLite) or master (PostgreSQL, 2 workers) on a loopback port."""
    directory = tmp_path / f"server-{request.param}"
    directory.mkdir()
    if request.param == "proxy":
        process = servers.start(directory, ("proxy", "start"))
    else:
        database = request.getfixturevalue("postgres_url")
        process = servers.start(directory, ("master", "start"), database=database, workers=2)
    compat = CompatServer(request.param, process, directory)
    try:
        yield compat
    finally:
        process.stop()
        if _failed(request):
            print(f"===== {request.param} server log (tail) =====\n{compat.log_tail()}")


class PeerClient:
    """Runs batches of real `slap` library calls (peer_scripts/slap_steps.py) and CLI commands."""

    def __init__(self, peer: Peer, server: CompatServer) -> None:
        self.peer = peer
        self.server = server

    def steps(self, *steps: dict[str, Any], rest: bool = False) -> list[dict[str, Any]]:
        """Run `steps` in one peer process; return one {"ok"|"error": ...} per step."""
        document = {"master_url": self.server.url, "rest_url": self.server.rest_url if rest else None,
                    "steps": list(steps)}
        result = subprocess.run(
            [str(self.peer.python), str(PEER_SCRIPTS / "slap_steps.py")], input=json.dumps(document),
            capture_output=True, text=True, timeout=STEPS_TIMEOUT, cwd="/",
        )
        if result.returncode != 0:
            raise AssertionError(f"peer slap_steps.py failed ({result.returncode}):\n{result.stderr}")
        answers = json.loads(result.stdout)
        assert len(answers) == len(steps)
        return answers

    def ok(self, *steps: dict[str, Any]) -> list[Any]:
        """Run `steps`; every one must succeed; return their results."""
        answers = self.steps(*steps)
        for step, answer in zip(steps, answers, strict=True):
            assert "ok" in answer, f"{step['op']} {_brief(step)} failed: {_describe(answer)}"
        return [answer["ok"] for answer in answers]

    def one(self, step: dict[str, Any]) -> Any:
        return self.ok(step)[0]

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> CliResult:
        """`slapos ARGS --cfg client.cfg` with the peer's CLI (it logs on stderr, prints JSON on stdout)."""
        command = [str(self.peer.slapos), *args, "--cfg", str(self.server.client_config())]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=self.server.directory)
        return CliResult(command, result.returncode, result.stdout, result.stderr)


@dataclass
class CliResult:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (f"$ {' '.join(self.command[1:])}\nexit {self.returncode}\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}")


def _brief(step: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in step.items() if k != "op"})[:300]


def _describe(answer: dict[str, Any]) -> str:
    if "ok" in answer:
        return f"ok: {json.dumps(answer['ok'])[:1000]}"
    return (f"{answer['error']} (HTTP {answer.get('status')}): {answer.get('message')}\n"
            f"body: {answer.get('body')}\n{answer.get('traceback', '')}")


@pytest.fixture
def client(peer: Peer, server: CompatServer) -> PeerClient:
    return PeerClient(peer, server)


# ------------------------------------------------------------------------------------------------
# Helpers on what the library returns
# ------------------------------------------------------------------------------------------------

def partitions_by_id(computer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["_partition_id"]: p for p in computer["partitions"]}


def is_free(partition: dict[str, Any]) -> bool:
    """How slapgrid recognises a free partition: destroyed, with no software release."""
    return (partition.get("_requested_state") == "destroyed"
            and partition.get("_software_release_document") is None)


def partition_of(computer: dict[str, Any], title: str) -> dict[str, Any]:
    """The partition whose instance is titled `title`."""
    found = [p for p in computer["partitions"]
             if (p.get("_parameter_dict") or {}).get("instance_title") == title and not is_free(p)]
    assert len(found) == 1, f"{len(found)} partitions hold {title!r}: {computer['partitions']}"
    return found[0]


def format_step(count: int, computer_id: str = COMPUTER_ID) -> dict[str, Any]:
    """A `format` step for partitions slappart0..count-1 at 127.0.1.1.. (and ::1)."""
    return {"op": "format", "computer_id": computer_id,
            "partitions": [[f"slappart{i}", f"127.0.1.{i + 1}"] for i in range(count)]}
