"""The built-in promise checks that ``partita:promise`` plugins import (standard library only).

Each class follows `slap.promise`'s contract: ``check()`` returns a one-line message when the
promise holds and raises `PromiseFailed` when it does not. Their settings come from the plugin's
``config`` dict (strings). Network and command deadlines stay below the promise's ``timeout`` so
a check answers before the runner gives up on it.

=================  ===========================================================================
class              config
=================  ===========================================================================
SocketListening    ``host``, ``port``: a TCP connection is accepted
UrlAvailable       ``url``, ``http-code`` (default 200): a GET answers that status (redirects
                   are not followed, TLS certificates are not verified: this checks liveness)
Command            ``command``: ``/bin/sh -c command`` exits 0; its output is the message
FileExists         ``path``: the file or directory exists
=================  ===========================================================================
"""
from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from typing import Any

from partita.slap.promise import Promise, PromiseFailed

DEADLINE_SHARE = 0.8
MAX_OUTPUT = 500


class Check(Promise):
    """A promise with a deadline for its own IO, below the runner's timeout."""

    def deadline(self) -> float:
        return max(float(self.timeout) * DEADLINE_SHARE, 0.5)

    def setting(self, key: str) -> str:
        value = self.config.get(key, "").strip()
        if not value:
            raise PromiseFailed(f"the promise's config has no {key!r}")
        return value


class SocketListening(Check):
    def check(self) -> str:
        host, port = self.setting("host").strip("[]"), self.setting("port")
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            with socket.create_connection((host, int(port)), timeout=self.deadline()):
                pass
        except (OSError, ValueError) as error:
            raise PromiseFailed(f"nothing accepts connections on {where}: {_reason(error)}") from None
        return f"{where} accepts connections"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    """An opener that ignores proxy settings, follows no redirect and accepts any certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                       urllib.request.HTTPSHandler(context=context))


class UrlAvailable(Check):
    def check(self) -> str:
        url = self.setting("url")
        expected = int(self.config.get("http-code", "200") or 200)
        try:
            with _opener().open(url, timeout=self.deadline()) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except (OSError, ValueError) as error:
            raise PromiseFailed(f"{url} does not answer: {_reason(error)}") from None
        if status != expected:
            raise PromiseFailed(f"{url} answered HTTP {status}, expected {expected}")
        return f"{url} answered HTTP {status}"


class Command(Check):
    def check(self) -> str:
        command = self.setting("command")
        with subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace",
                              start_new_session=True) as process:
            try:
                output, _ = process.communicate(timeout=self.deadline())
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the shell and whatever it started
                raise PromiseFailed(f"the command did not finish within {self.deadline():g}s") from None
        output = " ".join(output.split())[-MAX_OUTPUT:]
        if process.returncode != 0:
            raise PromiseFailed(f"the command exited with {process.returncode}: {output or 'no output'}")
        return output or "the command exited with 0"


class FileExists(Check):
    def check(self) -> str:
        path = self.setting("path")
        if not os.path.exists(path):
            raise PromiseFailed(f"{path} does not exist")
        return f"{path} exists"


def _reason(error: BaseException) -> str:
    """A short reason from a socket or URL error."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        error = reason
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
