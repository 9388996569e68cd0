"""XML-RPC to the node's supervisord over its unix socket, with a deadline on every call.

supervisor's own client transport (``supervisor.xmlrpc.SupervisorTransport``, also behind
``supervisor.childutils.getRPCInterface``) speaks to a ``unix://`` server URL, but it connects
without a timeout: a supervisord that accepts and never answers would hang the node for ever, and
it takes no timeout to pass. So this module uses the standard library's documented extension
point instead: an `xmlrpc.client.Transport` whose public ``make_connection`` returns an
`http.client.HTTPConnection` that connects to a unix socket, with the timeout applied to connecting
and to every read. It stays small and imports nothing heavy: the watchdog uses it.
"""
from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

from partita.node.errors import SupervisorError

RPC_TIMEOUT = 10.0


class SupervisorNotRunning(SupervisorError):
    """Nothing listens on the node's supervisord socket."""


class UnixSocketConnection(http.client.HTTPConnection):
    """HTTP over the unix socket `socket_path`; `timeout` bounds connecting and every read."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class UnixSocketTransport(xmlrpc.client.Transport):
    """An XML-RPC transport to the unix socket `socket_path` (see the module docstring)."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.timeout = timeout
        self.connection: UnixSocketConnection | None = None

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = UnixSocketConnection(self.socket_path, self.timeout)
        return self.connection

    def close(self) -> None:
        super().close()
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def rpc(socket_path: Path, method: str, *args: Any, timeout: float = RPC_TIMEOUT) -> Any:
    """Call ``method`` (e.g. ``supervisor.getState``) on the supervisord listening on `socket_path`.

    Raises `SupervisorNotRunning` when nothing listens, `SupervisorError` when it does not answer
    in time; a supervisor Fault is passed on as `xmlrpc.client.Fault`.
    """
    transport = UnixSocketTransport(str(socket_path), timeout)
    proxy = xmlrpc.client.ServerProxy("http://localhost", transport=transport)
    try:
        return getattr(proxy, method)(*args)
    except xmlrpc.client.Fault:
        raise
    except (FileNotFoundError, ConnectionRefusedError):
        raise SupervisorNotRunning(f"the node's supervisord is not running (socket {socket_path})") from None
    except TimeoutError:
        raise SupervisorError(f"the node's supervisord (socket {socket_path}) did not answer {method} "
                              f"within {timeout:g}s") from None
    except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as error:
        raise SupervisorError(f"cannot talk to the node's supervisord (socket {socket_path}): "
                              f"{getattr(error, 'strerror', None) or error}") from None
    finally:
        transport.close()
