"""``slapos computer builder set|unset`` and the builder line of ``computer info`` (issue 13):
what they send, what they print, and a refusal as one line."""
from __future__ import annotations

from tests.slap.test_cli_admin import COMPUTER, FakeMaster, cfg, fake, run  # noqa: F401


def test_builder_set_and_unset_send_the_flag(fake: FakeMaster, cfg: str) -> None:  # noqa: F811
    fake.answers["slapos.put.v0.compute_node_builder"] = (200, {"type": "success", "title": "set",
                                                                "computer_guid": "COMP-1", "builder": True})
    result = run(cfg, "computer", "builder", "set", "COMP-1")
    assert (result.exit_code, result.stdout) == (0, "COMP-1: builder (fills the binary cache)\n")
    assert fake.calls[-1] == ("slapos.put.v0.compute_node_builder", {"computer_guid": "COMP-1", "builder": True})
    result = run(cfg, "computer", "builder", "unset", "COMP-1")
    assert (result.exit_code, result.stdout) == (0, "COMP-1: not a builder\n")
    assert fake.calls[-1] == ("slapos.put.v0.compute_node_builder", {"computer_guid": "COMP-1", "builder": False})


def test_a_refusal_is_one_line(fake: FakeMaster, cfg: str) -> None:  # noqa: F811
    fake.answers["slapos.put.v0.compute_node_builder"] = (403, {
        "status": 403, "type": "Forbidden", "code": "FORBIDDEN",
        "title": "only an admin may choose which computers fill the binary cache"})
    result = run(cfg, "computer", "builder", "set", "COMP-1")
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "slapos: error: only an admin may choose which computers fill the binary cache"], result.stderr


def test_computer_info_says_whether_it_is_a_builder(fake: FakeMaster, cfg: str) -> None:  # noqa: F811
    for flag, shown in ((True, ["builder", "yes", "(fills", "the", "binary", "cache)"]), (False, ["builder", "no"])):
        fake.answers["slapos.get.v0.compute_node"] = (200, {**COMPUTER, "builder": flag, "certificates": [],
                                                            "partitions": []})
        result = run(cfg, "computer", "info", "COMP-1")
        assert shown in [line.split() for line in result.stdout.splitlines()], result.stdout
