"""A promise plugin's answer: the one JSON line ``python -m partita.slap.promise FILE`` prints.

The plugin runner (`slap.promise`, run as the partition's user) prints it; the node
(`node.promises`) reads it from the process's output and keeps the outcome with the plugin's
settings::

    {"ok": true, "message": "listening on 8080", "period": 60.0, "timeout": 20.0, "failure_threshold": 1}

``ok`` and ``message`` are the outcome (one line); ``period`` (seconds between two runs on an
unchanged partition), ``timeout`` (seconds a run may take) and ``failure_threshold`` (consecutive
failures before the promise counts as failing) are the plugin's settings, defaults filled in.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from partita.slap.wire._fields import Fields, to_json

WHERE = "promise answer"


@dataclass(frozen=True)
class PromiseAnswer:
    ok: bool
    message: str
    period: float
    timeout: float
    failure_threshold: int


def render_promise_answer(answer: PromiseAnswer) -> dict[str, Any]:
    return to_json(answer)


def parse_promise_answer(raw: object, where: str = WHERE) -> PromiseAnswer:
    """The answer read from JSON; a MalformedDocument naming the field otherwise."""
    fields = Fields(raw, where)
    return PromiseAnswer(
        ok=fields.boolean("ok"), message=fields.text("message"), period=fields.number("period"),
        timeout=fields.number("timeout"), failure_threshold=fields.integer("failure_threshold"),
    )


def answer_line(answer: PromiseAnswer) -> str:
    """The line the runner prints."""
    return json.dumps(render_promise_answer(answer))


def last_answer(lines: Iterable[str]) -> PromiseAnswer | None:
    """The answer in a runner's output: its last line holding a JSON object with ``ok`` (what the
    plugin itself printed before is skipped); None when there is none. A MalformedDocument when
    that line does not follow the contract."""
    for line in reversed(list(lines)):
        try:
            decoded = json.loads(line)
        except ValueError:
            continue
        if isinstance(decoded, dict) and "ok" in decoded:
            return parse_promise_answer(decoded)
    return None
