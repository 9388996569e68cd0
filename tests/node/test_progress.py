"""One line per step by default, the detailed log with -v, each failure once (`node.progress`, issue 11)."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from partita.node import progress


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@pytest.fixture
def root() -> Iterator[Collect]:
    """The root logger as ``slapos`` sets it: a handler at the chosen level (WARNING by default)."""
    logger = logging.getLogger()
    handler, previous = Collect(), logger.level
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def steps(root: Collect, level: int, capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str]]:
    logging.getLogger().setLevel(level)
    root.setLevel(level)
    undo = progress.show()
    try:
        progress.step("building %s", "/sr/software.cfg")
        progress.failed("%s (%s): promise %s failing: %s", "slappart0", "web", "port", "refused")
        logging.getLogger("partita.node.software").info("software x: building in /opt/x (log: /opt/x/.build.log)")
    finally:
        undo()
    return capsys.readouterr().err.splitlines(), root.lines


def test_by_default_a_plain_line_per_step_and_each_failure_once(root: Collect, capsys: pytest.CaptureFixture[str]) -> None:
    plain, logged = steps(root, logging.WARNING, capsys)
    assert plain == ["building /sr/software.cfg"]
    assert logged == ["WARNING partita.node.progress: slappart0 (web): promise port failing: refused"]


def test_verbose_is_the_detailed_log_with_the_steps(root: Collect, capsys: pytest.CaptureFixture[str]) -> None:
    plain, logged = steps(root, logging.INFO, capsys)
    assert plain == []
    assert logged == ["INFO partita.node.progress: building /sr/software.cfg",
                      "WARNING partita.node.progress: slappart0 (web): promise port failing: refused",
                      "INFO partita.node.software: software x: building in /opt/x (log: /opt/x/.build.log)"]


def test_quiet_shows_no_step(root: Collect, capsys: pytest.CaptureFixture[str]) -> None:
    plain, logged = steps(root, logging.ERROR, capsys)
    assert (plain, logged) == ([], [])
