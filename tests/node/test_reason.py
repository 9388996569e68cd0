"""Status reasons are one short line naming where the detail is (`node.reason`, issue 11)."""
from __future__ import annotations

from partita.node.reason import MAX_REASON, clip, last_line, status_reason

TRACEBACK = "\n".join([
    "Installing instance-profile.",
    "While:",
    "  Installing instance-profile.",
    "Traceback (most recent call last):",
    *[f'  File "/opt/lib/module{n}.py", line {n}, in function{n}' for n in range(40)],
    "FileNotFoundError: [Errno 2] No such file or directory: '/srv/sr/no-such-instance.cfg.in'",
    "",
])
LOG = "/srv/slapgrid/slappart0/.slapgrid/log/buildout.log"


def test_a_traceback_becomes_one_bounded_line_naming_the_log() -> None:
    reason = status_reason("buildout failed: the instance buildout failed with exit status 1", TRACEBACK, LOG)
    assert "\n" not in reason and len(reason) <= MAX_REASON
    assert reason.startswith("buildout failed: the instance buildout failed with exit status 1: ")
    assert "FileNotFoundError" in reason and reason.endswith(f"(log: {LOG})")
    assert "module3.py" not in reason


def test_the_log_path_survives_a_very_long_last_line() -> None:
    reason = status_reason("software build failed", "x" * 5000, "/opt/slapgrid/abc/.build.log")
    assert len(reason) <= MAX_REASON and reason.endswith("(log: /opt/slapgrid/abc/.build.log)")
    assert reason.startswith("software build failed: xxx")


def test_the_deadline_note_is_not_taken_for_the_error() -> None:
    assert last_line("Getting distribution for 'foo'.\n(stopped after the 120s deadline)") == \
        "Getting distribution for 'foo'."


def test_clip_keeps_a_short_line_and_cuts_a_long_one_in_the_middle() -> None:
    assert clip("promise p failing: refused") == "promise p failing: refused"
    assert clip("a\n\n  b  \n") == "a | b"
    long = "start-" + "m" * 1000 + "-end"
    clipped = clip(long, 100)
    assert len(clipped) == 100 and clipped.startswith("start-") and clipped.endswith("-end") and "…" in clipped


def test_no_detail_no_log_is_the_summary_alone() -> None:
    assert status_reason("service web exited with status 1") == "service web exited with status 1"
