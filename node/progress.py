"""What the node commands say they do, one line per step (issue 11).

``slapos node run`` (and ``software``, ``instance``, ``report``) print by default a quiet line
per step on stderr — ``building URL``, ``deploying slappart0 (title)``, ``done`` — and warnings
and errors, a failed step among them (``WARNING partita.node.progress: slappart0 (title): promise
p failing: …``). ``slapos -v node run`` shows the
detailed log instead (these lines included, with their logger name); ``-q``, errors only.

The steps are records of the logger ``partita.node.progress`` at INFO: `show` gives that logger a
plain handler when the root logger (set by ``slapos``'s ``-v``/``-q``) would not show them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from partita.slap.cli.main import StderrHandler

log = logging.getLogger("partita.node.progress")


def step(message: str, *args: object) -> None:
    """Say one step (``%``-style arguments, as for logging)."""
    log.info(message, *args)


def failed(message: str, *args: object) -> None:
    """Say a step that failed: a warning, shown (once, with its level) by the root logger's
    handlers in every mode but ``-q``, and kept by ``--log-file``."""
    log.warning(message, *args)


def show() -> Callable[[], None]:
    """Print the steps on stderr, one plain line each, unless the root logger already shows INFO
    (``-v``) or shows only errors (``-q``). Returns what undoes it."""
    root_level = logging.getLogger().getEffectiveLevel()
    if root_level <= logging.INFO or root_level >= logging.ERROR:
        return lambda: None
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    handler.addFilter(lambda record: record.levelno < logging.WARNING)  # the root's handlers show those
    previous = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    def undo() -> None:
        log.removeHandler(handler)
        log.setLevel(previous)

    return undo
