"""``--wait`` (`slap.cli.waiting`): stop at a failure that needs the user, progress while waiting
(issue 11). The CLI tests run a real master; the node's reports are sent through its JSON API,
as a node would, from a thread while the command waits."""
from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from partita.slap.cli import waiting
from partita.slap.cli.main import cli
from partita.slap.cli.waiting import CLEAR_LINE, Progress, needs_user, stale_failure
from partita.slap.wire.instance import InstanceDocument
from tests.slap.live_master import COMPUTER, SR, LiveMaster, master  # noqa: F401

CRASH = ("service hello-web exited with status 1: OSError: [Errno 98] Address already in use "
         "(log: /srv/slapgrid/slappart0/.slappart0_hello-web.log)")


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "POLL_INTERVAL", 0.1)


def wait_request(master: LiveMaster, node: Callable[[str], None], *args: str,
                 timeout: str = "30") -> tuple[Result, float]:
    """`slapos request web SR --wait` while `node(guid)` runs half a second later; the result and
    how long the command took."""
    guid = master.client.request_instance("web", SR)["instance_guid"]
    thread = threading.Timer(0.5, node, args=(guid,))
    thread.start()
    started = time.monotonic()
    try:
        result = CliRunner().invoke(cli, ["request", "--cfg", str(master.cfg), "web", SR, "--wait",
                                          "--timeout", timeout, *args])
    finally:
        thread.join()
    return result, time.monotonic() - started


def build(master: LiveMaster) -> None:
    master.client.supply(COMPUTER, SR)
    master.client.report_software_installation_state(COMPUTER, SR, "building")


def test_a_crashing_service_ends_the_wait_with_its_reason_once(master: LiveMaster) -> None:
    def node(guid: str) -> None:
        master.client.report_software_installation_state(COMPUTER, SR, "available")
        master.client.report_instance_state(guid, "error", CRASH)

    build(master)
    result, took = wait_request(master, node)
    assert result.exit_code == 1, result.output
    assert took < 10
    assert result.stderr.count(CRASH) == 1
    assert result.stderr.strip().splitlines()[-1] == f"slapos: error: instance 'web' failed: {CRASH}"
    assert "waiting: software building" in result.stderr  # the progress before
    assert CRASH not in result.stdout


def test_a_software_that_failed_to_build_ends_the_wait(master: LiveMaster) -> None:
    def node(guid: str) -> None:
        master.client.report_software_installation_state(
            COMPUTER, SR, "error", "buildout failed: Error: Couldn't download https://nowhere.example/x.tgz")

    build(master)
    result, took = wait_request(master, node, "--format", "json")
    assert result.exit_code == 1, result.output
    assert took < 10
    reason = "software failed: buildout failed: Error: Couldn't download https://nowhere.example/x.tgz"
    assert result.stderr.strip().splitlines()[-1] == f"slapos: error: instance 'web' failed: {reason}"
    assert json.loads(result.stdout)["status_reason"] == reason  # scripts still get the document


def test_a_failing_promise_is_waited_for_until_the_timeout(master: LiveMaster) -> None:
    def node(guid: str) -> None:
        master.client.report_software_installation_state(COMPUTER, SR, "available")
        master.client.report_instance_state(guid, "error", "promise hello-web-answers failing: refused")

    build(master)
    result, _ = wait_request(master, node, timeout="5")
    assert result.exit_code == 2, result.output
    assert "not ready after 5s: promise hello-web-answers failing: refused" in result.stderr


def test_progress_lines_change_with_the_reason_and_are_not_repeated(master: LiveMaster) -> None:
    def node(guid: str) -> None:
        time.sleep(1.0)
        master.client.report_software_installation_state(COMPUTER, SR, "available")
        time.sleep(1.0)
        master.client.report_instance_state(guid, "started")

    build(master)
    result, _ = wait_request(master, node)
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("waiting: ")]
    # polled every 0.1 s for 2.5 s: each reason is shown once, when it changes (the second one
    # lasts a second, which a loaded machine may poll past)
    assert progress[0] == "waiting: software building"
    assert progress in (["waiting: software building"],
                        ["waiting: software building", "waiting: waiting for the node to deploy it"])


def test_stopping_a_failed_instance_waits_past_the_old_failure(master: LiveMaster) -> None:
    guid = master.client.request_instance("web", SR)["instance_guid"]
    master.act_as_node(guid)
    master.client.report_instance_state(guid, "error", CRASH)
    node = threading.Timer(0.5, master.client.report_instance_state, args=(guid, "stopped"))
    node.start()
    try:
        result = CliRunner().invoke(cli, ["stop", "--cfg", str(master.cfg), "web", "--wait", "--timeout", "30"])
    finally:
        node.join()
    assert result.exit_code == 0, result.output
    assert master.client.get_instance_tree("web")["reported_state"] == "stopped"


# -- the pure rule -------------------------------------------------------------------------------

BASE = InstanceDocument(
    title="web", instance_guid="SOFTINST-1", software_release_uri=SR, software_type="default",
    state="started", connection_parameters={}, parameters={}, shared=False, root_instance_title="web",
    ip_list=(), full_ip_list=(), sla_parameters={}, computer_guid=COMPUTER, compute_partition_id="slappart0",
    processing_timestamp=0, access_status_message="", status_reason="started", reported_state="started",
    timestamp=1.0)


def doc(**changes: object) -> InstanceDocument:
    return dataclasses.replace(BASE, **changes)


def test_needs_user_rule() -> None:
    assert needs_user(BASE) is None
    assert needs_user(doc(reported_state=None, status_reason="software failed: no such file")) == \
        "software failed: no such file"
    assert needs_user(doc(reported_state="error", status_reason=CRASH)) == CRASH
    failed = "buildout failed: the instance buildout failed with exit status 1: Error: bad option"
    assert needs_user(doc(reported_state="error", status_reason=failed)) == failed
    assert needs_user(doc(reported_state="error", status_reason="line one\nline two")) == "line one | line two"
    assert needs_user(doc(reported_state="error", status_reason="")) == "the node reported an error"
    # what heals without the user
    assert needs_user(doc(reported_state="error", status_reason="promise p failing: refused")) is None
    child = ("buildout failed: exit status 1: Error: waiting for db: connection parameter 'url' not "
             "published yet (started)")
    assert needs_user(doc(reported_state="error", status_reason=child)) is None
    assert needs_user(doc(reported_state=None, status_reason="software building")) is None
    assert needs_user(doc(compute_partition_id=None, reported_state=None,
                          status_reason="waiting for a free partition")) is None
    assert needs_user(doc(state="destroyed", reported_state="error", status_reason=CRASH)) is None


def test_stale_failure_rule() -> None:
    failed = doc(reported_state="error", status_reason=CRASH)
    assert stale_failure(None, failed) is None                                  # a new instance
    assert stale_failure(BASE, failed) is None                                  # same state requested
    assert stale_failure(BASE, dataclasses.replace(failed, state="stopped")) == CRASH  # state changed
    assert stale_failure(BASE, doc(state="stopped")) is None                    # nothing failed


# -- progress on a terminal and elsewhere --------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    screen = Terminal()
    progress = Progress(screen, width=40)
    progress.show("software building")
    progress.show("software building")
    progress.show("waiting for the node to deploy it, which is a long line\nwith a second line")
    progress.close()
    assert screen.getvalue() == (
        CLEAR_LINE + "waiting: software building"
        + CLEAR_LINE + "waiting: waiting for the node to deplo…"  # width - 1: never wraps
        + CLEAR_LINE)
    assert "\n" not in screen.getvalue()


def test_progress_elsewhere_is_one_line_per_change() -> None:
    log = io.StringIO()
    progress = Progress(log, width=40)
    for reason in ("software building", "software building", "waiting for the node to deploy it"):
        progress.show(reason)
    progress.close()
    assert log.getvalue() == "waiting: software building\nwaiting: waiting for the node to deploy it\n"
