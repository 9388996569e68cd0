"""Partita's promise plugin contract, and the runner the node calls for one plugin.

A plugin is a Python file in a partition's ``etc/plugin/`` that defines a class named ``Promise``::

    from partita.slap.promise import Promise as Base, PromiseFailed

    class Promise(Base):
        period = 60             # seconds between two runs while the partition is unchanged
        timeout = 10            # seconds a run may take; more is a failure
        failure_threshold = 1   # consecutive failures before the promise counts as failing

        def check(self) -> str:
            if not ok():
                raise PromiseFailed("what is wrong, in one line")
            return "what is right"

``config`` (a module-level dict of strings, optional) is passed to the constructor and readable
as ``self.config``. Any exception from ``check`` is a failure whose message is the exception's
text. Subclassing `Promise` is optional: any class with a ``check()`` method works, and the
attributes it lacks take the defaults below.

The node runs each plugin in its own process, as the partition's user, with the toolchain's
Python: ``python -m partita.slap.promise <file>``. That process prints one JSON line,
``{"ok": bool, "message": str, "period": float, "timeout": float, "failure_threshold": int}`` (the
contract `slap.wire.promise_result`, which the node parses), and exits 0 (also when the promise fails: the JSON says so); exit status 2 means the plugin file itself
is broken (the JSON's message says how). A ``check()`` still running after ``timeout`` seconds is a
failure ("timed out after Ns").
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

from partita.slap.wire.promise_result import PromiseAnswer, answer_line

DEFAULT_PERIOD = 60.0
DEFAULT_TIMEOUT = 20.0
DEFAULT_FAILURE_THRESHOLD = 1
MAX_MESSAGE = 2000


class PromiseFailed(Exception):
    """Raised by ``check()`` when what it checks does not hold."""


class Promise:
    """Base class of promise plugins (optional)."""

    period: float = DEFAULT_PERIOD
    timeout: float = DEFAULT_TIMEOUT
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD

    def __init__(self, config: dict[str, str] | None = None) -> None:
        self.config = dict(config or {})

    def check(self) -> str:
        raise NotImplementedError("a promise plugin must define check()")


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def load(path: Path) -> tuple[Any, dict[str, str]]:
    """The ``Promise`` class and ``config`` dict of the plugin file at `path`."""
    spec = importlib.util.spec_from_file_location(f"partita_promise_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path.name} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, "Promise", None)
    if cls is None or not callable(getattr(cls, "check", None)):
        raise ImportError(f"{path.name} defines no class Promise with a check() method")
    config = getattr(module, "config", {}) or {}
    if not isinstance(config, dict):
        raise ImportError(f"{path.name}: config must be a dict")
    return cls, {str(k): str(v) for k, v in config.items()}


def settings(cls: Any) -> dict[str, Any]:
    """The plugin's period, timeout and failure threshold, with the defaults for what it lacks."""
    def number(name: str, default: float, kind: type) -> Any:
        try:
            value = kind(getattr(cls, name, default))
        except (TypeError, ValueError):
            return default
        return value if value > 0 else default

    return {
        "period": number("period", DEFAULT_PERIOD, float),
        "timeout": number("timeout", DEFAULT_TIMEOUT, float),
        "failure_threshold": number("failure_threshold", DEFAULT_FAILURE_THRESHOLD, int),
    }


def run(path: Path) -> tuple[PromiseAnswer, int]:
    """Run the plugin at `path` once: (its answer, the exit status)."""
    try:
        cls, config = load(path)
    except Exception as error:  # a broken plugin file is the plugin's failure, told in one line
        return PromiseAnswer(False, _one_line(f"cannot load the plugin: {error}"), **settings(object)), 2
    answer = settings(cls)
    outcome: dict[str, Any] = {}

    def check() -> None:
        try:
            outcome["message"] = cls(config).check()
        except Exception as error:  # any exception of check() is the promise failing
            outcome["error"] = str(error) or type(error).__name__

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(answer["timeout"])
    if worker.is_alive():
        return PromiseAnswer(False, f"timed out after {answer['timeout']:g}s", **answer), 0
    if "error" in outcome:
        return PromiseAnswer(False, _one_line(outcome["error"]), **answer), 0
    return PromiseAnswer(True, _one_line(outcome.get("message") or "ok"), **answer), 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m partita.slap.promise PLUGIN_FILE", file=sys.stderr)
        return 2
    answer, status = run(Path(args[0]))
    print(answer_line(answer), flush=True)
    return status


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # a check still running past its timeout must not keep the process alive
