"""The system OpenSSH client, driven through subprocess, and a thread pool over hosts.

Every call is ``ssh -o BatchMode=yes -o ConnectTimeout=N [-F CONFIG] [-l USER] -- HOST COMMAND``:
no password prompt, a bounded connection, the user's ssh configuration replaced by ``--ssh-config``
when given. ``COMMAND`` is one string the remote shell reads: it is always made with `shlex.join`
(argv lists) or `script` (a fixed shell script whose arguments are passed as ``"$1"``…), never by
pasting values into shell text. Every call has a deadline; a failure is an `SshError` naming the
host with the last line of the command's error output.

`parallel(hosts, work)` runs `work(host)` for each host in a thread pool and returns the results in
the hosts' order, or raises one `ExperimentError` listing one line per failed host.
"""
from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from partita.experiment.errors import ExperimentError, SshError

CONNECT_TIMEOUT = 10
COMMAND_TIMEOUT = 300.0
MAX_WORKERS = 16
T = TypeVar("T")
H = TypeVar("H")


@dataclass(frozen=True)
class Ssh:
    """How to reach the hosts: the remote user and an optional ssh configuration file."""

    user: str = "root"
    config: str | None = None
    connect_timeout: int = CONNECT_TIMEOUT

    def options(self) -> list[str]:
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if self.config:
            options = ["-F", self.config, *options]
        return options

    def argv(self, host: str, command: str) -> list[str]:
        return ["ssh", *self.options(), "-l", self.user, "--", host, command]

    def run(self, host: str, argv: Sequence[str], *, input: bytes | None = None,
            timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        """`argv` run on `host` (its output as bytes); an SshError if it fails and `check`."""
        return self.run_command(host, shlex.join(argv), input=input, timeout=timeout, check=check)

    def script(self, host: str, text: str, *args: str, input: bytes | None = None,
               timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        """The shell script `text` run on `host` with `args` as ``"$1"``, ``"$2"``…"""
        return self.run(host, ["sh", "-ec", text, "sh", *args], input=input, timeout=timeout, check=check)

    def run_command(self, host: str, command: str, *, input: bytes | None = None,
                    timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(self.argv(host, command), input=input, capture_output=True,
                                  timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SshError(host, f"no answer within {timeout:g} s")
        except OSError as error:
            raise SshError(host, f"cannot run ssh: {error.strerror}")
        if check and done.returncode != 0:
            raise SshError(host, failure(done))
        return done

    def copy(self, host: str, sources: Sequence[str], destination: str, *,
             timeout: float = COMMAND_TIMEOUT) -> None:
        """``scp -r SOURCES HOST:DESTINATION`` (a directory that exists on the host)."""
        target = f"[{host}]" if ":" in host else host
        argv = ["scp", *self.options(), "-q", "-r", "-p", "-o", f"User={self.user}", "--", *sources,
                f"{target}:{destination}"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SshError(host, f"copy to {destination}: no end within {timeout:g} s")
        if done.returncode != 0:
            raise SshError(host, f"copy to {destination}: {failure(done)}")


def failure(done: subprocess.CompletedProcess) -> str:
    """One line about a failed command: its last line of error output (or of output)."""
    for stream in (done.stderr, done.stdout):
        text = stream.decode(errors="replace") if isinstance(stream, bytes) else (stream or "")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return f"{lines[-1][:300]} (exit status {done.returncode})"
    return f"exit status {done.returncode}"


def parallel(items: Sequence[H], work: Callable[[H], T], *, name: Callable[[H], str] = str) -> list[T]:
    """`work(item)` for every item, in a thread pool; the results in order, or one ExperimentError
    with a line per failed item (``host: message``)."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
    results: list[T] = []
    errors: list[str] = []
    for item, future in zip(items, futures):
        error = future.exception()
        if error is None:
            results.append(future.result())
        elif isinstance(error, SshError):
            errors.append(str(error))
        elif isinstance(error, ExperimentError):
            errors.append(f"{name(item)}: {error}")
        else:
            errors.append(f"{name(item)}: {type(error).__name__}: {error}")
    if errors:
        raise ExperimentError("; ".join(errors) if len(errors) == 1 else "\n" + "\n".join(errors))
    return results
