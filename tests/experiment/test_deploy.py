"""`experiment.deploy.node_config` and `experiment.ssh.parallel`: the pure parts of ``up``."""
from __future__ import annotations

import configparser

import pytest

from partita.experiment import layout
from partita.experiment.deploy import Options, node_config
from partita.experiment.errors import ExperimentError, SshError
from partita.experiment.ssh import Ssh, parallel
from partita.experiment.state import HostState


def test_node_config_gets_the_package_index_and_each_host_its_settings() -> None:
    options = Options(node_settings=(layout.parse_node_setting("slapformat.user_base_name=e{index}u"),
                                     layout.parse_node_setting("cache_directory=/c/{host}")))
    text = node_config("[slapos]\ncomputer_id = COMP-3\n[slapformat]\npartition_amount = 2\n",
                       "https://10.0.0.11:8443", options, HostState("h3", 3, "node", "/r/h3"))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    assert parser["slapos"]["package_index"] == "https://10.0.0.11:8443/packages/simple/"
    assert parser["slapos"]["cache_directory"] == "/c/h3"
    assert parser["slapos"]["computer_id"] == "COMP-3"
    assert parser["slapformat"]["user_base_name"] == "e3u"


def test_parallel_reports_one_line_per_failed_host() -> None:
    def work(host: str) -> str:
        if host == "ok":
            return "done"
        raise SshError(host, "Connection refused (exit status 255)")
    assert parallel(["ok", "ok"], work) == ["done", "done"]
    with pytest.raises(ExperimentError) as raised:
        parallel(["ok", "a", "b"], work)
    assert str(raised.value).splitlines()[1:] == ["a: Connection refused (exit status 255)",
                                                  "b: Connection refused (exit status 255)"]


def test_ssh_commands_are_batch_bounded_and_end_options_before_the_host() -> None:
    argv = Ssh("root", "/e/ssh_config").argv("h1", "true")
    assert argv[:3] == ["ssh", "-F", "/e/ssh_config"]
    assert "BatchMode=yes" in argv and any(word.startswith("ConnectTimeout=") for word in argv)
    assert argv[-3:] == ["--", "h1", "true"]
