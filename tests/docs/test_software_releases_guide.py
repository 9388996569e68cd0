"""docs/software-releases.md runs (issue 12): its first section copies hello-web to ``~/my-hello``,
adds a parameter, supplies and requests it on a running proxy and node, reads the answer with curl,
has bad parameters refused by ``slapos request``, shows ``slapos software info`` and changes it.

The guide assumes a proxy and a node running, as getting-started.md leaves them: the setup below
makes them, as an ordinary user, on a free port and an address range of the test's own.
"""
from __future__ import annotations

from tests.docs.runner import REPO, GuideRunner
from tests.docs.test_guides import own_network
from tests.support.node import single_user
from tests.support.server import free_port

DOCS = REPO / "docs"


def running_node(port: int, network: int) -> str:
    """The proxy and a node running, nothing supplied."""
    return (f"```sh\nslapos configure local --daemon-listen-port {port} --ipv4-local-network 127.0.{network}.0/24"
            " --partition-number 2\n```\n\n"
            "<!-- guide: background -->\n```sh\nslapos proxy start\n```\n\n"
            "```sh\nslapos node format\n```\n\n"
            "<!-- guide: background -->\n```sh\nslapos node run\n```\n")


def output_of(runner: GuideRunner, start: str) -> str:
    """The output of the guide's block starting with `start`."""
    return runner.outputs[next(block.line for block in runner.blocks() if block.text.startswith(start))]


def test_software_releases_first_release_as_an_ordinary_user():
    runner = GuideRunner(DOCS / "software-releases.md", user=single_user(),
                         setup=running_node(free_port(), own_network()))
    runner.run()

    first = output_of(runner, "URL=$(slapos info my-hello")
    assert first.splitlines()[-1] == "Hello, Ada!"  # the new parameter, with the schema's greeting

    partition = output_of(runner, "PARTITION=")
    assert "hello-web-answers.py" in partition
    assert '"ok": true' in partition  # the promise, run by hand

    refused = output_of(runner, "slapos request my-hello ~/my-hello/software.cfg --parameters nmae=Ada")
    assert ("slapos: error: parameter 'nmae' is not a parameter of this software type "
            "(known: greeting, name, port)") in refused
    assert "slapos: error: parameter 'port': 'http' is not of type 'integer'" in refused
    assert refused.count("exit status 1") == 2

    info = output_of(runner, "slapos software info ~/my-hello/software.cfg")
    assert info.startswith("my-hello: ")
    assert any(line.split()[:3] == ["name", "string", "world"] for line in info.splitlines()), info

    changed = output_of(runner, "slapos request my-hello ~/my-hello/software.cfg --parameters greeting=Bonjour")
    assert changed.splitlines()[-1] == "Bonjour, world!"  # name left to the schema's default

    assert runner.swept == []  # destroyed by the guide, then stopped with the node's supervisord
