"""The guides cannot drift from the code: every command block of README.md and docs/ runs here.

`tests.docs.runner` runs a guide's ``sh`` blocks in order, as a reader would, in a fresh
directory: ``$HOME`` is new, and the first block starts in ``$HOME/partita``, a copy of the
repository's tracked files as they are in the working tree ("in the repository" in a guide), with
the project's ``.venv/bin`` first on ``PATH``. `tests.docs.guide` documents the annotations
(``<!-- guide: background -->``, ``as-user``, ``as-root``, ``not-run (why)``).

Run as root, the ordinary user of a guide is ``slapnode`` (through ``runuser``, like the
single-user node tests); run as another user, it is that user. Fixed ports and the default
address range are replaced with a free port and a range of the test's own (see each test's
substitutions), so the run does not collide with other servers on the machine.
"""
from __future__ import annotations

import json
import random

from tests.docs.runner import REPO, GuideRunner
from tests.support.node import single_user
from tests.support.server import free_port

DOCS = REPO / "docs"


def own_network() -> int:
    """A 127.0.K.0/24 range for one guide run (the node tests take K in 100..250)."""
    return random.randint(20, 99)


def test_getting_started_as_an_ordinary_user():
    port, network = free_port(), own_network()
    runner = GuideRunner(DOCS / "getting-started.md", user=single_user(), substitutions=[
        ("--daemon-listen-port 8080", f"--daemon-listen-port {port} --ipv4-local-network 127.0.{network}.0/24"),
        ("127.0.1.1:8080", f"127.0.{network}.1:8080"),
    ])
    runner.run()
    curl = next(block.line for block in runner.blocks() if block.text.startswith("curl "))
    assert runner.outputs[curl].splitlines()[-1] == "Bonjour"  # what the guide says it answers (after curl's progress)


def node_setup(port: int, network: int) -> str:
    """A configured machine, as getting-started.md leaves it: the proxy and a node running, the
    hello-web release supplied (``$SR``)."""
    return (f"```sh\nslapos configure local --daemon-listen-port {port} --ipv4-local-network 127.0.{network}.0/24"
            " --partition-number 3\n```\n\n"
            "<!-- guide: background -->\n```sh\nslapos proxy start\n```\n\n"
            "```sh\nslapos node format\n```\n\n"
            "<!-- guide: background -->\n```sh\nslapos node run\n```\n\n"
            "```sh\nSR=$PWD/software-releases/hello-web/software.cfg\nslapos supply $SR local_computer\n```\n")


def test_configuration_as_an_ordinary_user():
    runner = GuideRunner(DOCS / "configuration.md", user=single_user(), substitutions=[
        ("--daemon-listen-port 8080", f"--daemon-listen-port {free_port()}"),
    ])
    runner.run()
    assert len(runner.outputs) == 1  # configure local (proxy start ran in the background)


def test_client_as_an_ordinary_user_on_a_running_node():
    runner = GuideRunner(DOCS / "client.md", user=single_user(), setup=node_setup(free_port(), own_network()))
    runner.run()
    exit_codes = next(block.line for block in runner.blocks() if block.text.startswith("slapos request web $SR"))
    assert runner.outputs[exit_codes].splitlines()[-1] == "ready"
    assert runner.swept == []  # the instance's service stopped with the node's supervisord, not by the last resort


def test_node_one_shot_commands_as_an_ordinary_user():
    """node.md's format, software, instance and report deploy an instance requested beforehand;
    its unformat stops the node's services and removes the partitions."""
    port, network = free_port(), own_network()
    setup = (f"```sh\nslapos configure local --daemon-listen-port {port} --ipv4-local-network 127.0.{network}.0/24"
             " --partition-number 2\n```\n\n"
             "<!-- guide: background -->\n```sh\nslapos proxy start\n```\n\n"
             "```sh\nSR=$PWD/software-releases/hello-web/software.cfg\nslapos supply $SR local_computer\n"
             "slapos request web $SR --parameters greeting=Hej || [ $? -eq 2 ]  # 2: no partition yet\n```\n")
    runner = GuideRunner(DOCS / "node.md", user=single_user(), setup=setup)
    runner.run()
    one_shots = next(block.line for block in runner.blocks() if block.text.startswith("slapos node software"))
    assert "slappart0 (web): started" in runner.outputs[one_shots]
    unformat = next(block.line for block in runner.blocks() if block.text.startswith("slapos node unformat"))
    assert {"stopped the node's supervisord", "removed partition slappart0"} <= set(
        runner.outputs[unformat].splitlines()), runner.outputs[unformat]


def test_readme_demo_as_an_ordinary_user():
    """The main job as a new user runs it: `scripts/demo` deploys hello-web and prints where it
    answers, `scripts/demo stop` leaves nothing running (scripts/test is not-run: it runs this).
    The copy's .venv is the project's (its install is what scripts/test itself just did), so the
    demo's install step is skipped: an ordinary user may not write into it."""
    port, network = free_port(), own_network()
    runner = GuideRunner(REPO / "README.md", user=single_user(), link_venv=True, timeout=600, substitutions=[
        ("scripts/demo     #", f"PARTITA_DEMO_SKIP_INSTALL=1 PARTITA_DEMO_NETWORK=127.0.{network}.0/24 "
                               f"scripts/demo --port {port}     #"),
    ])
    runner.run()
    demo = next(block.line for block in runner.blocks() if "scripts/demo --port" in block.text)
    output = runner.outputs[demo]
    assert f"demo: hello-web answers at: http://127.0.{network}.1:8080/" in output, output
    assert "-> Hello from Partita" in output, output
    assert runner.swept == []  # `scripts/demo stop` stopped the node, its services and the proxy


def test_api_against_the_proxy():
    port = free_port()
    setup = (f"```sh\nslapos configure local --daemon-listen-port {port}\n```\n\n"
             "<!-- guide: background -->\n```sh\nslapos proxy start\n```\n")
    runner = GuideRunner(DOCS / "api.md", user=single_user(), setup=setup,
                         substitutions=[("http://127.0.0.1:8080/", f"http://127.0.0.1:{port}/")])
    runner.run()
    answer = json.loads(runner.outputs[next(block.line for block in runner.blocks())])
    assert answer["title"] == "hello", answer


# Guides with commands that no test runs yet, and why: each entry is a debt, not an exemption.
NOT_RUN_YET: dict[str, str] = {}


def test_every_guide_with_commands_is_run_by_a_test():
    """A guide added to docs/ (or given its first command block) needs a test here."""
    from tests.docs.guide import shell_blocks

    sources = "".join(path.read_text() for path in (REPO / "tests" / "docs").glob("test_*.py"))
    guides = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
    with_commands = {path.name for path in guides if any(block.runs for block in shell_blocks(path.read_text()))}
    run = {name for name in with_commands if f'DOCS / "{name}"' in sources or f'REPO / "{name}"' in sources}
    assert with_commands - run == set(NOT_RUN_YET), "guides with commands no test runs"
