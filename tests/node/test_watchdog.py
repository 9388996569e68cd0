"""The watchdog (`node.watchdog`): its pure decisions, its file handling, the listener protocol,
then one run under a real supervisord against a real proxy."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from supervisor.childutils import get_headers

from partita.node.watchdog import (
    BANG_FILE,
    Decision,
    ServiceExit,
    Settings,
    WatchdogError,
    bang_message,
    decide,
    handle_event,
    instance_guid,
    parse_arguments,
    run,
    service_exit,
)
from partita.slap.client import MasterClient
from tests.node.test_supervisor import node_config, node_root, partition, running_supervisor, wait_for, wrapper
from tests.support import server

__all__ = ["node_root"]  # a fixture, used by name

SR = "https://sr.example.invalid/hello/software.cfg"
EXITED = {"eventname": "PROCESS_STATE_EXITED", "len": "0"}
FATAL = {"eventname": "PROCESS_STATE_FATAL", "len": "0"}


def payload(process: str = "web-on-watch", group: str = "slappart0") -> str:
    return f"processname:{process} groupname:{group} from_state:RUNNING expected:0 pid:4242"


# -- pure logic --------------------------------------------------------------------------------

def test_headers_and_payloads_are_read_with_supervisor_s_own_parser() -> None:
    header = "ver:3.0 server:supervisor serial:21 pool:partita-watchdog poolserial:10 " \
             "eventname:PROCESS_STATE_EXITED len:71\n"
    assert get_headers(header)["eventname"] == "PROCESS_STATE_EXITED"
    assert get_headers(header)["len"] == "71"
    assert get_headers(payload()) == {"processname": "web-on-watch", "groupname": "slappart0",
                                       "from_state": "RUNNING", "expected": "0", "pid": "4242"}


def test_service_exit_only_for_watched_processes_of_a_partition() -> None:
    exited = service_exit(EXITED, get_headers(payload()))
    assert exited == ServiceExit("slappart0", "web", "web-on-watch", "PROCESS_STATE_EXITED", 4242)
    assert service_exit(FATAL, get_headers("processname:web-on-watch groupname:slappart0 from_state:BACKOFF")) \
        == ServiceExit("slappart0", "web", "web-on-watch", "PROCESS_STATE_FATAL", None)
    assert service_exit(EXITED, get_headers(payload(process="helper"))) is None
    assert service_exit(EXITED, get_headers(payload(process="-on-watch"))) is None
    assert service_exit({"eventname": "PROCESS_STATE_RUNNING"}, get_headers(payload())) is None
    for group in ("..", "../etc", "a/b", ""):
        assert service_exit(EXITED, get_headers(payload(group=group))) is None


def test_decide_bangs_once_per_deployment() -> None:
    assert decide("1700000000.5", None) == Decision(True, "first exit since the deployment 1700000000.5")
    assert decide("2", "1").bang
    assert not decide("2", "2").bang and "already banged" in decide("2", "2").reason
    assert not decide(None, None).bang and "never deployed" in decide(None, None).reason
    assert not decide("", "1").bang


def test_bang_message() -> None:
    exited = ServiceExit("slappart0", "web", "web-on-watch", "PROCESS_STATE_EXITED", 1)
    assert bang_message(exited, 3) == "service web exited with status 3"
    assert bang_message(exited, None) == "service web exited with status unknown"
    fatal = ServiceExit("slappart0", "web", "web-on-watch", "PROCESS_STATE_FATAL", None)
    assert bang_message(fatal, 127) == "service web could not be started (FATAL)"


@pytest.mark.parametrize("text, message", [(None, "no .slapgrid/instance.json"), ("[1]", "not a JSON object"),
                                           ("{bad", "not a JSON object"), ('{"x": 1}', "no instance_guid")])
def test_instance_guid_errors(text: str | None, message: str) -> None:
    with pytest.raises(WatchdogError, match=message):
        instance_guid(text)


def test_arguments() -> None:
    settings = parse_arguments(["--master-url", "http://m", "--computer-id", "C", "--instance-root", "/srv/s"])
    assert settings == Settings("http://m", "C", Path("/srv/s"))
    assert settings.socket == Path("/srv/s/sv.sock")
    with_tls = parse_arguments(["--master-url", "https://m", "--computer-id", "C", "--instance-root", "/srv/s",
                                "--cert-file", "c.crt", "--key-file", "c.key", "--ca-file", "ca.crt"])
    assert (with_tls.cert_file, with_tls.key_file, with_tls.ca_file) == ("c.crt", "c.key", "ca.crt")


# -- handling one event with files -------------------------------------------------------------

class Recorder:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.error = error

    def __call__(self, settings: Settings, partition_id: str, guid: str, message: str) -> None:
        self.calls.append((partition_id, guid, message))
        if self.error:
            raise self.error


def deployed_partition(root: Path, timestamp: str | None = "100", guid: str | None = "SOFTINST-1") -> Path:
    directory = root / "slappart0"
    (directory / ".slapgrid").mkdir(parents=True)
    if timestamp is not None:
        (directory / ".timestamp").write_text(timestamp + "\n")
    if guid is not None:
        (directory / ".slapgrid/instance.json").write_text(json.dumps({"instance_guid": guid}))
    return directory


def handle(root: Path, bang: Recorder, text: str = payload(), headers: dict[str, str] = EXITED) -> str:
    return handle_event(Settings("http://m", "COMP-1", root), headers, text, bang=bang,
                        exit_status=lambda settings, exited: 9)


def test_handle_bangs_then_skips_until_the_next_deployment(tmp_path: Path) -> None:
    directory = deployed_partition(tmp_path)
    bang = Recorder()
    line = handle(tmp_path, bang)
    assert bang.calls == [("slappart0", "SOFTINST-1", "service web exited with status 9")]
    assert line == "slappart0: web-on-watch: banged instance SOFTINST-1: service web exited with status 9"
    assert (directory / ".slapgrid" / BANG_FILE).read_text() == "100\n"
    assert "already banged for the deployment 100" in handle(tmp_path, bang)
    (directory / ".timestamp").write_text("200")
    handle(tmp_path, bang)
    assert len(bang.calls) == 2
    assert handle(tmp_path, bang, payload(process="helper")) == ""
    assert len(bang.calls) == 2


def test_handle_missing_files_and_master_errors(tmp_path: Path) -> None:
    bang = Recorder()
    assert "never deployed" in handle(tmp_path, bang)  # no partition directory at all
    directory = deployed_partition(tmp_path, guid=None)
    with pytest.raises(WatchdogError, match="instance.json"):
        handle(tmp_path, bang)
    assert not (directory / ".slapgrid" / BANG_FILE).exists() and bang.calls == []
    (directory / ".slapgrid/instance.json").write_text('{"instance_guid": "SOFTINST-1"}')
    failing = Recorder(ConnectionError("master down"))
    with pytest.raises(WatchdogError, match="cannot bang instance SOFTINST-1: master down"):
        handle(tmp_path, failing)
    assert (directory / ".slapgrid" / BANG_FILE).read_text() == "100\n"  # recorded first: at most once


def test_handle_follows_no_symbolic_link(tmp_path: Path) -> None:
    directory = deployed_partition(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (directory / ".slapgrid" / BANG_FILE).symlink_to(victim)
    handle(tmp_path, Recorder())
    assert victim.read_text() == "precious"
    assert (directory / ".slapgrid" / BANG_FILE).read_text() == "100\n"
    (directory / ".timestamp").unlink()
    (directory / ".timestamp").symlink_to(victim)
    with pytest.raises(WatchdogError, match="cannot read .timestamp"):
        handle(tmp_path, Recorder())


# -- the listener protocol ---------------------------------------------------------------------

def test_run_speaks_the_listener_protocol_and_survives_errors() -> None:
    events = ""
    for body in (payload(), payload(process="boom-on-watch"), payload(process="helper")):
        events += f"ver:3.0 server:supervisor eventname:PROCESS_STATE_EXITED len:{len(body)}\n{body}"
    seen = []

    def handler(settings: Settings, headers: dict[str, str], text: str) -> str:
        seen.append(get_headers(text)["processname"])
        if "boom" in text:
            raise RuntimeError("unexpected")
        return "handled" if "on-watch" in text else ""

    stdout, stderr = io.StringIO(), io.StringIO()
    run(Settings("http://m", "C", Path("/srv")), io.StringIO(events), stdout, stderr, handler)
    assert seen == ["web-on-watch", "boom-on-watch", "helper"]
    assert stdout.getvalue() == "READY\n" + "RESULT 2\nOKREADY\n" * 3
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("partita-watchdog: handled")
    assert "RuntimeError: unexpected" in lines[1]


def test_the_payload_length_counts_bytes_and_is_decoded_as_utf8() -> None:
    """supervisor's ``len`` counts bytes: `main` reads stdin as latin-1 (one character per byte)."""
    body = payload(group="slappart0") + " note:café"
    raw = f"ver:3.0 eventname:PROCESS_STATE_EXITED len:{len(body.encode())}\n{body}".encode()
    seen = []
    stdin = io.TextIOWrapper(io.BytesIO(raw * 2), encoding="latin-1", newline="")
    stdout = io.StringIO()
    run(Settings("http://m", "C", Path("/srv")), stdin, stdout, io.StringIO(),
        lambda settings, headers, text: seen.append(text) or "")
    assert seen == [body, body]
    assert stdout.getvalue() == "READY\n" + "RESULT 2\nOKREADY\n" * 2


# -- a real supervisord and a real proxy -------------------------------------------------------

def test_a_watched_service_that_exits_bangs_once_per_deployment(tmp_path: Path, node_root: Path) -> None:
    proxy = server.start(tmp_path, ("proxy", "start"))
    try:
        master = MasterClient(proxy.url, timeout=10)
        master.format_compute_node("local_computer", [{"partition_id": "slappart0", "ip_list": [
            {"ip-address": "127.0.1.1", "network-interface": "lo", "netmask": "255.255.255.255"}]}])
        master.supply("local_computer", SR)
        instance = master.request_instance("watched", SR)
        guid = instance["instance_guid"]
        assert instance["compute_partition_id"] == "slappart0"
        config = node_config(node_root, master_url=proxy.url, computer_id="local_computer")
        with running_supervisor(config) as supervisor:
            directory = partition(config)
            (directory / ".slapgrid").mkdir()
            (directory / ".slapgrid/instance.json").write_text(json.dumps({"instance_guid": guid}))
            (directory / ".timestamp").write_text("100")
            supervisor.apply("slappart0", [wrapper(directory, "crash", "#!/bin/sh\nexit 7\n")],
                             user=None, home=directory)
            log = config.instance_root / "var/log/watchdog.log"
            first = master.get_instance(guid)["timestamp"]

            supervisor.start("slappart0")
            wait_for(lambda: log.exists() and "banged instance" in log.read_text(), what="the first bang")
            assert f"banged instance {guid}: service crash exited with status 7" in log.read_text()
            second = master.get_instance(guid)["timestamp"]
            assert second > first

            supervisor.start("slappart0")  # exits again within the same deployment: no bang
            wait_for(lambda: "already banged for the deployment 100" in log.read_text(), what="the skip")
            assert master.get_instance(guid)["timestamp"] == second

            (directory / ".timestamp").write_text("200")  # the node processed the partition again
            supervisor.start("slappart0")
            wait_for(lambda: log.read_text().count("banged instance") == 2, what="the second bang")
            assert master.get_instance(guid)["timestamp"] > second
    finally:
        proxy.stop()
