"""``--wait``: poll an instance until it is ready, until the node reports a failure that needs
its owner, or until a timeout; show the current status reason meanwhile.

Outcomes (`wait_for`) and the exit statuses the commands give them::

    READY     is_ready: where its owner asked it to be                       exit 0
    FAILED    needs_user: the node reported a failure that will not heal     exit 1
              by itself; its reason is printed once, as the error line
    TIMEOUT   neither within --timeout seconds; the last reason is printed   exit 2

`is_ready` and `needs_user` are pure rules over the master's instance document
(`slap.wire.instance.InstanceDocument`): the master's ``status_reason`` says why an instance is not
ready (`master.services.status`), and ``reported_state`` is ``error`` when the node's last pass
of the instance failed (its message is then the status reason). Failures that need the user:

- "software failed: …": the release did not build (a broken URL, a failing build, a release
  the node refuses);
- a reported error: the instance buildout failed, a service exited on start, the node could
  not set the partition up, …

except those that heal without the user, where waiting is right:

- "promise X failing: …": a service still warming up (the node checks its promises again);
- an instance buildout waiting for an instance it requested to publish ("waiting for db:
  connection parameter 'url' not published yet", `partita:request`): the tree converges.

A request that changes the instance's release, type, parameters or SLA clears what the node
reported before (the master forgets it), so a failure seen then is about the request waited for.
A change of the state alone keeps the last report until the node processes the instance again:
the failure shown when the wait begins is then about the previous state, and is waited past
(`stale_failure`) until the node reports again (a new report identical to it cannot be told
from it: that wait runs to its timeout).

Progress goes to stderr (`Progress`): on a terminal, one line rewritten in place (``\\r`` and
"clear line") with the current reason, cut to the terminal's width; elsewhere (a pipe, a log)
one ``waiting: <reason>`` line per change. The failure's reason is not shown as progress, only
once as the final error.
"""
from __future__ import annotations

import dataclasses
import enum
import shutil
import sys
import time
from typing import TextIO

import click

from partita.slap.cli.common import EXIT_NOT_READY, is_allocated, read_instance
from partita.slap.cli.instance_view import show_instance
from partita.slap.cli.output import echo_err, shorten_end, single_line
from partita.slap.client import MasterClient
from partita.slap.errors import PartitaError, RemoteError
from partita.slap.wire.instance import InstanceDocument

POLL_INTERVAL = 1.0
DEFAULT_WAIT_TIMEOUT = 600.0
CLEAR_LINE = "\r\x1b[2K"
HEALING = ("promise ",)
CHILD_NOT_READY = ("not published yet", "waiting for ")


class Outcome(enum.Enum):
    READY = "ready"
    FAILED = "failed"
    TIMEOUT = "timeout"


def is_ready(doc: InstanceDocument) -> bool:
    """Whether an instance is where its owner asked it to be (a pure rule, the one `--wait` uses).

    - destroyed: the node reported it destroyed, or it has no partition any more;
    - otherwise it needs a partition (a host, for a shared instance), and then:
      - shared: its host published its connection parameters;
      - not shared: the node reported the requested state with no further message, i.e. the
        master's status reason is that state itself (`master.services.status.describe` gives
        "started" only once the software is built and the node reported started without a
        failing promise or error message).
    """
    state = doc.state
    allocated = doc.compute_partition_id is not None
    if state == "destroyed":
        return doc.reported_state == "destroyed" or not allocated
    if not allocated:
        return False
    if doc.shared:
        return bool(doc.connection_parameters)
    return doc.reported_state == state and doc.status_reason == state


def needs_user(doc: InstanceDocument) -> str | None:
    """The reason when the node reported a failure that will not heal by itself, else None
    (the rule is drawn in the module docstring)."""
    if doc.state == "destroyed" or doc.shared or doc.compute_partition_id is None:
        return None
    reason = single_line(doc.status_reason)
    if reason.startswith("software failed"):
        return reason
    if doc.reported_state != "error":
        return None
    if reason.startswith(HEALING) or any(marker in reason for marker in CHILD_NOT_READY):
        return None
    return reason or "the node reported an error"


def stale_failure(previous: InstanceDocument | None, doc: InstanceDocument) -> str | None:
    """The failure `doc` shows that the node reported before this request: the request changed the
    requested state (from `previous`'s), and the report still shown is about the old one."""
    if previous is None or previous.state == doc.state:
        return None
    return needs_user(doc)


class Progress:
    """The current status reason on `stream` (stderr): in place on a terminal, else one line per change."""

    def __init__(self, stream: TextIO | None = None, width: int | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.in_place = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width or shutil.get_terminal_size().columns
        self.last: str | None = None
        self.line_open = False

    def show(self, reason: str) -> None:
        reason = single_line(reason) or "waiting"
        if reason == self.last:
            return
        self.last = reason
        if self.in_place:
            self.stream.write(CLEAR_LINE + shorten_end(f"waiting: {reason}", max(self.width - 1, 10)))
            self.line_open = True
        else:
            self.stream.write(f"waiting: {reason}\n")
        self.stream.flush()

    def close(self) -> None:
        """Clear the line shown in place, so what follows starts on a clean line."""
        if self.line_open:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.line_open = False


def wait_for(client: MasterClient, doc: InstanceDocument, timeout: float,
             progress: Progress | None = None, stale: str | None = None) -> tuple[InstanceDocument, Outcome]:
    """Poll the instance until `is_ready`, `needs_user` or `timeout` seconds; the last document
    and the outcome. The failure `stale` (`stale_failure`) is waited past while it is shown."""
    progress = progress if progress is not None else Progress()
    deadline = time.monotonic() + timeout
    guid = doc.instance_guid
    try:
        while True:
            if is_ready(doc):
                return doc, Outcome.READY
            failure = needs_user(doc)
            if failure is not None and failure != stale:
                return doc, Outcome.FAILED
            if failure is None:
                stale = None  # the node reported again: a failure from now on is about this request
            progress.show(doc.status_reason)
            if time.monotonic() + POLL_INTERVAL > deadline or not guid:
                return doc, Outcome.TIMEOUT
            time.sleep(POLL_INTERVAL)
            try:
                doc = read_instance(client.get_instance(guid))
            except RemoteError as error:
                if error.code == "NOT_FOUND" and doc.state == "destroyed":
                    gone = dataclasses.replace(doc, compute_partition_id=None, reported_state="destroyed")
                    return gone, Outcome.READY
                raise
    finally:
        progress.close()


def conclude(client: MasterClient, doc: InstanceDocument, *, wait: bool, timeout: float,
             output_format: str, previous: InstanceDocument | None = None) -> None:
    """After a request: wait if asked, show the instance, and end with the outcome's exit status.

    Without `wait`, an instance with a partition (or being destroyed) is done (0); one that waits
    for a partition exits 2 with the reason. A failure that needs the user is one error line and
    exit 1 (with ``--format json`` the document is printed first, for scripts). `previous` is the
    instance before the request, when known (`stale_failure`)."""
    if wait:
        doc, outcome = wait_for(client, doc, timeout, stale=stale_failure(previous, doc))
    else:
        outcome = Outcome.READY if is_allocated(doc) or doc.state == "destroyed" else Outcome.TIMEOUT
    if outcome is Outcome.FAILED:
        if output_format == "json":
            show_instance(doc, output_format)
        raise PartitaError(f"instance {doc.title!r} failed: {needs_user(doc)}")
    show_instance(doc, output_format)
    if outcome is Outcome.TIMEOUT:
        reason = single_line(doc.status_reason) or "not ready"
        if wait:
            echo_err(f"not ready after {timeout:g}s: {reason}")
        else:
            echo_err(f"Instance requested; the master is provisioning it: {reason}")
        raise click.exceptions.Exit(EXIT_NOT_READY)
