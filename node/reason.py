"""Status reasons: what the master shows for a release or an instance, on one short line (issue 11).

A failing build or buildout leaves a multi-line log tail (a traceback, pip's or buildout's
output). The whole tail goes to the node's log; the master gets one line of at most `MAX_REASON`
characters: what failed, the last meaningful line of the output, and where the whole of it is::

    buildout failed: the instance buildout failed with exit status 1: Error: Couldn't find a
    distribution for 'foo' (log: /srv/slapgrid/slappart0/.slapgrid/log/buildout.log)

Pure functions: no IO.
"""
from __future__ import annotations

MAX_REASON = 300
ELLIPSIS = "…"


def one_line(text: str) -> str:
    """`text`'s non-blank lines joined with `` | ``, each stripped."""
    return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())


def last_line(detail: str) -> str:
    """The last meaningful line of an output tail (the deadline note and blank lines skipped)."""
    lines = [line.strip() for line in str(detail).splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith("(stopped after")]
    return (meaningful or lines or [""])[-1]


def clip(text: str, limit: int = MAX_REASON) -> str:
    """`text` on one line, at most `limit` characters (cut in the middle: the start says what
    failed, the end says where to look)."""
    line = one_line(text)
    if len(line) <= limit:
        return line
    head = (limit - len(ELLIPSIS)) * 2 // 3
    tail = limit - len(ELLIPSIS) - head
    return line[:head] + ELLIPSIS + line[len(line) - tail:]


def status_reason(summary: str, detail: str = "", log_path: object | None = None,
                  limit: int = MAX_REASON) -> str:
    """One line for the master: `summary` (what failed), the last line of `detail`, and the log
    file `log_path` that holds the whole detail; at most `limit` characters, the log path kept."""
    where = f" (log: {log_path})" if log_path else ""
    last = last_line(detail)
    body = one_line(summary)
    if last and last not in body:
        body = f"{body}: {last}"
    room = max(limit - len(where), limit // 3)
    return clip(clip(body, room) + where, limit)
