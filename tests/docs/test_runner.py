"""The guide runner: blocks share a terminal's state, failures name the guide's line, nothing
started survives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.docs.runner import BlockFailed, GuideRunner


def guide(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guide.md"
    path.write_text(text)
    return path


def test_variables_and_directory_carry_over_and_substitutions_apply(tmp_path: Path):
    runner = GuideRunner(guide(tmp_path, "```sh\nGREETING=Bonjour\nmkdir sub && cd sub\n```\n\n"
                                         "```sh\necho \"$GREETING from $(basename $PWD) on PORT\"\n```\n"),
                         substitutions=[("PORT", "4242")])
    runner.run()
    assert runner.outputs[6] == "Bonjour from sub on 4242\n"


def test_a_failing_block_names_the_guide_line_the_block_and_its_output(tmp_path: Path):
    runner = GuideRunner(guide(tmp_path, "Intro\n\n```sh\necho before\nfalse\necho never\n```\n"))
    with pytest.raises(BlockFailed) as failure:
        runner.run()
    message = str(failure.value)
    assert message.startswith(f"{tmp_path}/guide.md:3: the block exited 1:\necho before\nfalse\n")
    assert "--- output:\nbefore\n" in message and "never\n" not in message.split("--- output:")[1]


def test_an_unset_variable_fails_the_block(tmp_path: Path):
    with pytest.raises(BlockFailed, match="guide.md:1: the block exited 1"):
        GuideRunner(guide(tmp_path, "```sh\necho $NOT_SET\n```\n")).run()


def test_not_run_blocks_are_skipped_and_a_stale_substitution_fails(tmp_path: Path):
    text = "<!-- guide: not-run (it would fail) -->\n```sh\nfalse\n```\n"
    GuideRunner(guide(tmp_path, text)).run()
    with pytest.raises(AssertionError, match="no block contains '8080' any more"):
        GuideRunner(guide(tmp_path, text + "```sh\ntrue\n```\n"), substitutions=[("8080", "1")]).run()


def test_a_background_block_is_waited_for_then_stopped_with_what_it_started(tmp_path: Path):
    text = ("<!-- guide: background -->\n```sh\nsleep 300 &\necho $! > $HOME/child; echo ready; sleep 300\n```\n\n"
            "```sh\ncat $HOME/child\n```\n")
    runner = GuideRunner(guide(tmp_path, text))
    runner.run()
    child = int(runner.outputs[7])
    assert not os.path.exists(f"/proc/{child}") or "zombie" in Path(f"/proc/{child}/status").read_text()
    assert not runner.top.exists()


def test_a_background_block_that_exits_at_once_fails(tmp_path: Path):
    with pytest.raises(BlockFailed, match=r"guide.md:2: the block \(in the background\) exited 3"):
        GuideRunner(guide(tmp_path, "<!-- guide: background -->\n```sh\nexit 3\n```\n")).run()


def test_a_block_past_its_timeout_fails(tmp_path: Path):
    with pytest.raises(BlockFailed, match=r"guide.md:1: the block timed out after 1 s"):
        GuideRunner(guide(tmp_path, "```sh\nsleep 30\n```\n"), timeout=1).run()


def test_the_environment_given_reaches_every_block(tmp_path: Path):
    runner = GuideRunner(guide(tmp_path, "```sh\necho \"$PGPORT\"\n```\n"), env={"PGPORT": "5499"})
    runner.run()
    assert runner.outputs[1] == "5499\n"


@pytest.mark.root
def test_node_configurations_are_found_where_a_guide_writes_them_never_in_another_users_tree(tmp_path: Path):
    found: list[list[str]] = []

    class Recording(GuideRunner):
        def after_block(self) -> None:
            found.append(sorted(str(path.relative_to(self.home)) for path in self.node_configs()))

    text = ("```sh\nmkdir -p etc/node-a .slapos theirs\n"
            "for where in etc/node-a .slapos theirs partita; do echo '[slapos]' > $where/slapos.cfg; done\n"
            "chown nobody theirs\nln -s $HOME/theirs elsewhere\n```\n")
    Recording(guide(tmp_path, "```sh\ncd $HOME\n```\n\n" + text)).run()
    assert found[-1] == [".slapos/slapos.cfg", "etc/node-a/slapos.cfg"]
