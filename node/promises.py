"""A partition's promises: discover, run with deadlines as the partition's user, keep results.

Two kinds, as in SlapOS: executables in ``etc/promise/`` (exit status 0 is success, the last line
of output is the message) and plugins in ``etc/plugin/*.py`` following `slap.promise`'s contract
(run by the toolchain's Python, ``python -m partita.slap.promise FILE``, whose answer line is
`slap.wire.promise_result`'s contract). Each run has a deadline (the
plugin's ``timeout``, bounded by the node's ``promise_timeout`` for executables and unknown
plugins).

Results live in ``<partition>/.slapgrid/promise/<name>.json``: the last outcome, when it ran, how
many runs in a row failed, and the plugin's period and failure threshold. A promise *fails* when
its consecutive failures reach its threshold. On an unchanged partition only the promises whose
period has elapsed run again (`due`).
"""
from __future__ import annotations

import json
import logging
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from partita.node.files import node_directory, read_text, write_file
from partita.node.layout import NODE_DIR, PROMISE_DIR
from partita.node.runner import RunAs, clean_environment, run
from partita.node.toolchain import Toolchain
from partita.slap.fileio import open_beneath
from partita.slap.errors import MalformedDocument
from partita.slap.promise import DEFAULT_FAILURE_THRESHOLD, DEFAULT_PERIOD
from partita.slap.wire.promise_result import last_answer

log = logging.getLogger(__name__)

STATE_DIR = Path(NODE_DIR) / PROMISE_DIR
PARALLEL = 4
MAX_RESULT = 64 * 1024


@dataclass(frozen=True)
class PromiseFile:
    name: str
    path: Path
    plugin: bool


@dataclass(frozen=True)
class PromiseResult:
    name: str
    ok: bool
    message: str
    ran_at: float
    failures: int              # consecutive failed runs
    period: float
    failure_threshold: int

    @property
    def failing(self) -> bool:
        return not self.ok and self.failures >= self.failure_threshold

    def due(self, now: float) -> bool:
        return now >= self.ran_at + self.period


def discover(partition: Path) -> list[PromiseFile]:
    """The partition's promises. Its user owns ``etc``: a link planted above ``etc/plugin`` or
    ``etc/promise`` is not followed, and an entry is judged by itself (a link in these directories
    stays a promise, run as the user, who resolves it), never by what a link points to."""
    found: list[PromiseFile] = []
    for subdirectory, plugin in (("plugin", True), ("promise", False)):
        directory = partition / "etc" / subdirectory
        for name, mode in _entries(directory):
            if plugin and (not name.endswith(".py") or name.startswith("__") or name.startswith(".")):
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                continue
            if not plugin and stat.S_ISREG(mode) and not mode & 0o111:
                continue
            found.append(PromiseFile(name[:-3] if plugin else name, directory / name, plugin))
    return found


def _entries(directory: Path) -> list[tuple[str, int]]:
    """(name, mode) of each entry of `directory`, sorted, not following links ([] if unreadable)."""
    try:
        fd = open_beneath(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return []
    entries = []
    try:
        for name in sorted(os.listdir(fd)):
            try:
                entries.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode))
            except OSError:
                continue
    finally:
        os.close(fd)
    return entries


def load_result(partition: Path, name: str) -> PromiseResult | None:
    text = read_text(partition / STATE_DIR / f"{name}.json", MAX_RESULT)
    try:
        return PromiseResult(**json.loads(text)) if text is not None else None
    except (ValueError, TypeError):
        return None


def _save(partition: Path, result: PromiseResult) -> None:
    """Write the result in ``.slapgrid/promise`` (made if missing, never through a link)."""
    directory = partition / STATE_DIR
    if not (partition / NODE_DIR).is_dir():  # the node makes it (group: the partition's) first
        node_directory(partition / NODE_DIR, group=None, mode=0o750)
    node_directory(directory, group=None, mode=0o755)
    write_file(directory, f"{result.name}.json", json.dumps(asdict(result)), mode=0o644)


def run_one(partition: Path, promise: PromiseFile, previous: PromiseResult | None, *, toolchain: Toolchain,
            run_as: RunAs, timeout: float) -> PromiseResult:
    """Run one promise now and record its result (`previous`: its last one, if any)."""
    period, threshold = DEFAULT_PERIOD, DEFAULT_FAILURE_THRESHOLD
    if promise.plugin:
        ok, message, period, threshold = _run_plugin(partition, promise, previous, toolchain, run_as, timeout)
    else:
        ok, message = _run_executable(partition, promise, run_as, timeout)
    failures = 0 if ok else (previous.failures if previous else 0) + 1
    result = PromiseResult(promise.name, ok, message, time.time(), failures, period, threshold)
    _save(partition, result)
    return result


def _run_executable(partition: Path, promise: PromiseFile, run_as: RunAs, timeout: float) -> tuple[bool, str]:
    outcome = run([str(promise.path)], cwd=partition, env=clean_environment(partition, run_as),
                  timeout=timeout, run_as=run_as, umask=0o027)
    last = outcome.lines[-1] if outcome.lines else ""
    if outcome.timed_out:
        return False, f"timed out after {timeout:g}s"
    if outcome.returncode != 0:
        return False, last or f"exited with status {outcome.returncode}"
    return True, last or "ok"


def _run_plugin(partition: Path, promise: PromiseFile, previous: PromiseResult | None, toolchain: Toolchain,
                run_as: RunAs, timeout: float) -> tuple[bool, str, float, int]:
    deadline = timeout + 5.0  # the plugin enforces its own timeout; this bounds a stuck process
    outcome = run([str(toolchain.python), "-m", "partita.slap.promise", str(promise.path)], cwd=partition,
                  env=clean_environment(partition, run_as), timeout=deadline, run_as=run_as, umask=0o027)
    fallback_period = previous.period if previous else DEFAULT_PERIOD
    if outcome.timed_out:
        return False, f"timed out after {deadline:g}s", fallback_period, DEFAULT_FAILURE_THRESHOLD
    try:
        answer = last_answer(outcome.lines)
    except MalformedDocument as error:
        return False, f"the plugin answered badly: {error}", fallback_period, DEFAULT_FAILURE_THRESHOLD
    if answer is not None:
        return answer.ok, answer.message, answer.period, answer.failure_threshold
    detail = outcome.lines[-1] if outcome.lines else f"exit status {outcome.returncode}"
    return False, f"the plugin did not answer: {detail}", fallback_period, DEFAULT_FAILURE_THRESHOLD


def run_all(partition: Path, *, toolchain: Toolchain, run_as: RunAs, timeout: float,
            only_due: bool = False) -> list[PromiseResult]:
    """Run the partition's promises (all, or only those due) in parallel; every current result."""
    now = time.time()
    promises = discover(partition)
    todo: list[tuple[PromiseFile, PromiseResult | None]] = []
    results = []
    for promise in promises:
        previous = load_result(partition, promise.name)
        if only_due and previous is not None and not previous.due(now):
            results.append(previous)
        else:
            todo.append((promise, previous))
    if todo:
        with ThreadPoolExecutor(max_workers=min(PARALLEL, len(todo))) as pool:
            results.extend(pool.map(
                lambda item: run_one(partition, *item, toolchain=toolchain, run_as=run_as, timeout=timeout), todo))
    return sorted(results, key=lambda r: r.name)


def failing(results: list[PromiseResult]) -> list[PromiseResult]:
    return [r for r in results if r.failing]


def next_due(partition: Path) -> float | None:
    """When the earliest promise of the partition is due again (a time.time() value)."""
    times = [r.ran_at + r.period for p in discover(partition) if (r := load_result(partition, p.name))]
    return min(times) if times else None


def describe_failure(result: PromiseResult) -> str:
    """The status reason of a failing promise."""
    return f"promise {result.name} failing: {result.message}"
