"""The JSON API client: one `MasterClient` per master, one method per JSON method.

Every call is ``POST <master_url>/<method>`` with a JSON body and a JSON answer (the slapproxy
JSON-RPC v0 naming, `reference/slap-protocol.md` §2.7). The client keeps one `requests.Session`
(keep-alive) and puts a deadline on every call: ``timeout`` seconds to connect and to read, and for
the long poll `wait_compute_node_change` its own timeout plus `WAIT_MARGIN`.

Errors (see `slap.errors`)::

    ClientError
    ├── MasterUnreachable   no connection, or no answer in time: "cannot reach the master at URL: ..."
    │   └── MasterRefused   the connection was refused or reset (the error's kind, not its text)
    ├── AuthenticationFailed  the TLS handshake failed, in one line (`slap.tls_failures`): "cannot
    │                       verify the master at URL against the CA in FILE: ..." or "the master at
    │                       URL refused the client certificate FILE: ..." (with its expiry date when
    │                       it expired)
    └── RemoteError         the master answered an error: the JSON body's ``title``, ``code`` and
                            ``status`` (a refused identity is 401 ``UNAUTHENTICATED`` or
                            ``REVOKED``); a body that is not JSON gives its first line and the code
                            ``HTTP_<status>``

Transport seam: pass ``session=`` anything with the `requests.Session` ``post`` signature (``url,
json, timeout, verify``; and ``headers``, ``cert``, ``verify`` attributes, ``close``) to run the
client without a network.

A kept-alive connection the master closed as idle (it does after a few seconds) may be reused at
the very moment it closes: the call then fails with "Remote end closed connection without
response" though the master never saw it. The client's session (`new_session`) sends such a call
once more, at once, on a new connection: only when the connection was a reused one and it broke
before any byte of an answer (the end of the connection instead of a status line, or a reset
while sending), which is safe for every method. A timeout, a new connection that fails, or a
failure once an answer has started is never sent again.

Trust: the master is verified against ``ca_file`` (the master CA, PEM: requests' ``verify``, given
with each call so that ``$REQUESTS_CA_BUNDLE`` cannot replace it), or against requests' default
CAs when none is given; verification is never turned off.

Identity, one of:

- a client certificate, ``cert=(cert_file, key_file)`` (users, computers, partitions over mTLS);
- an API token, ``api_token=...``: every call carries ``Authorization: Bearer <token>`` (scripts);
- for the proxy (which authenticates no one), a partition acting for its instance passes
  ``partition=(computer_id, partition_id)`` and every call carries ``Authorization: X-SlapPartition
  computer_id=C, computer_partition_id=P``. It cannot be combined with an API token.
"""
from __future__ import annotations

import base64
import binascii
import http.client
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any

import requests
import urllib3.connection
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from partita.slap import tls_failures
from partita.slap.errors import ClientError, MasterRefused, MasterUnreachable, RemoteError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
WAIT_MARGIN = 10.0
USER_AGENT = "partita-client/0.1"

JSONDict = dict[str, Any]

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class MasterClient:
    """A client of one master's JSON API."""

    def __init__(self, master_url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 partition: tuple[str, str] | None = None,
                 cert: tuple[str, str] | str | None = None, ca_file: str | None = None,
                 api_token: str | None = None, session: requests.Session | None = None) -> None:
        if not master_url:
            raise ClientError("no master URL given")
        if partition is not None and api_token:
            raise ClientError("a client acts for a partition or with an API token, not both")
        self.master_url = master_url.rstrip("/")
        self.timeout = float(timeout)
        self.partition = partition
        self.ca_file = ca_file
        self.cert_file = cert[0] if isinstance(cert, tuple) else cert
        self.session = session if session is not None else new_session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        if partition is not None:
            computer, part = partition
            self.session.headers["Authorization"] = (
                f"X-SlapPartition computer_id={computer}, computer_partition_id={part}"
            )
        if api_token:
            self.session.headers["Authorization"] = f"Bearer {api_token.strip()}"
        if cert is not None:
            self.session.cert = cert
        # Given with every call too: requests lets $REQUESTS_CA_BUNDLE override a session's verify.
        self.verify: str | bool = ca_file if ca_file else True
        self.session.verify = self.verify

    # -- plumbing -----------------------------------------------------------------------------

    def _failure(self, error: requests.RequestException) -> ClientError:
        """A failed exchange as one line: a TLS refusal (`slap.tls_failures`), else unreachable
        (`MasterRefused` when the connection was refused or reset)."""
        if self.master_url.startswith("https:"):
            refused = tls_failures.explain(str(error), master_url=self.master_url, ca_file=self.ca_file,
                                           cert_file=self.cert_file, now=datetime.now(timezone.utc))
            if refused is not None:
                return refused
        kind = MasterRefused if _refused(error) else MasterUnreachable
        return kind(f"cannot reach the master at {self.master_url}: {_reason(error)}")

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> MasterClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, method: str, body: JSONDict | None = None, *, read_timeout: float | None = None) -> Any:
        """POST `body` to `method` and return the decoded JSON answer, or raise a ClientError."""
        url = f"{self.master_url}/{method}"
        deadline = (self.timeout, read_timeout if read_timeout is not None else self.timeout)
        started = time.monotonic()
        try:
            response = self.session.post(url, json=body or {}, timeout=deadline, verify=self.verify)
        except requests.Timeout:
            raise MasterUnreachable(
                f"cannot reach the master at {self.master_url}: no answer within {_seconds(deadline)}"
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as error:
            raise ClientError(f"bad master URL {self.master_url!r}: {error}") from None
        except requests.RequestException as error:
            raise self._failure(error) from None
        except OSError as error:  # requests' own check of the CA, certificate and key files
            raise ClientError(f"cannot use the TLS files for {self.master_url}: {error}") from None
        log.debug("%s -> %s in %.3fs", method, response.status_code, time.monotonic() - started)
        return _decode(method, response)

    # -- users: instances and software installations --------------------------------------------

    def request_instance(self, title: str, software_release_uri: str, software_type: str = "default", *,
                         parameters: JSONDict | None = None, shared: bool = False,
                         state: str | None = None, sla_parameters: dict[str, str] | None = None) -> JSONDict:
        """``slapos.post.v0.software_instance``: create or update an instance; its document.

        An instance that waits for a partition is answered with ``compute_partition_id`` null and a
        ``status_reason`` naming what it waits for. ``state`` None keeps the current one.
        """
        body: JSONDict = {
            "title": title, "software_release_uri": software_release_uri,
            "software_type": software_type, "parameters": dict(parameters or {}),
            "shared": bool(shared), "sla_parameters": dict(sla_parameters or {}),
        }
        if state is not None:
            body["state"] = state
        return self.call("slapos.post.v0.software_instance", body)

    def get_instance(self, instance_guid: str) -> JSONDict:
        """``slapos.get.v0.software_instance``: the instance document."""
        return self.call("slapos.get.v0.software_instance", {"instance_guid": instance_guid})

    def get_instance_tree(self, title: str) -> JSONDict:
        """``slapos.get.v0.instance_tree``: the document of the root instance titled `title`."""
        return self.call("slapos.get.v0.instance_tree", {"title": title})

    def list_instance_trees(self) -> list[JSONDict]:
        """``slapos.allDocs.v0.instance_tree_list``: the caller's instance trees (``result_list``)."""
        return _result_list(self.call("slapos.allDocs.v0.instance_tree_list", {}))

    def supply(self, computer_guid: str, software_release_uri: str, state: str = "available") -> JSONDict:
        """``slapos.post.v0.software_installation``: ask `computer_guid` to install (or remove) an SR."""
        return self.call("slapos.post.v0.software_installation", {
            "computer_guid": computer_guid, "software_release_uri": software_release_uri, "state": state,
        })

    def list_software_installations(self, computer_guid: str) -> list[JSONDict]:
        """``slapos.allDocs.v0.compute_node_software_installation_list`` (``result_list``)."""
        return _result_list(self.call("slapos.allDocs.v0.compute_node_software_installation_list",
                                      {"computer_guid": computer_guid}))

    # -- nodes --------------------------------------------------------------------------------

    def get_compute_node_state(self, computer_guid: str) -> JSONDict:
        """``slapos.get.v0.compute_node_state``: everything the node must converge to."""
        return self.call("slapos.get.v0.compute_node_state", {"computer_guid": computer_guid})

    def wait_compute_node_change(self, computer_guid: str, generation: int, timeout: float = 30.0) -> JSONDict:
        """``slapos.wait.v0.compute_node_change``: long poll until the computer's generation moves."""
        return self.call("slapos.wait.v0.compute_node_change",
                         {"computer_guid": computer_guid, "generation": generation, "timeout": timeout},
                         read_timeout=float(timeout) + WAIT_MARGIN)

    def format_compute_node(self, computer_guid: str, compute_partition_list: list[JSONDict]) -> JSONDict:
        """``slapos.put.v0.compute_node_format``: declare the computer's partitions and addresses.

        Each partition: ``{"partition_id": "slappart0", "ip_list": [{"ip-address": "127.0.1.1",
        "network-interface": "lo", "netmask": "255.255.255.255"}]}``.
        """
        return self.call("slapos.put.v0.compute_node_format",
                         {"computer_guid": computer_guid, "compute_partition_list": compute_partition_list})

    def report_software_installation_state(self, computer_guid: str, software_release_uri: str,
                                           reported_state: str, error_log: str | None = None) -> JSONDict:
        """``slapos.put.v0.software_installation_reported_state``: building, available, error, destroyed."""
        body: JSONDict = {"computer_guid": computer_guid, "software_release_uri": software_release_uri,
                          "reported_state": reported_state}
        if error_log is not None:
            body["error_log"] = error_log
        return self.call("slapos.put.v0.software_installation_reported_state", body)

    def report_instance_state(self, instance_guid: str, reported_state: str,
                              status_message: str | None = None) -> JSONDict:
        """``slapos.put.v0.software_instance_reported_state``: started, stopped, destroyed, error."""
        body: JSONDict = {"instance_guid": instance_guid, "reported_state": reported_state}
        if status_message is not None:
            body["status_message"] = status_message
        return self.call("slapos.put.v0.software_instance_reported_state", body)

    def set_connection_parameters(self, instance_guid: str, connection_parameter_dict: JSONDict,
                                  shared_instance_guid: str | None = None) -> JSONDict:
        """``slapos.put.v0.software_instance_connection_parameter``: publish (for a hosted shared one too)."""
        body: JSONDict = {"instance_guid": instance_guid, "connection_parameter_dict": connection_parameter_dict}
        if shared_instance_guid is not None:
            body["shared_instance_guid"] = shared_instance_guid
        return self.call("slapos.put.v0.software_instance_connection_parameter", body)

    def bang(self, instance_guid: str, message: str) -> JSONDict:
        """``slapos.put.v0.software_instance_bang``: ask for the instance's tree to be processed again."""
        return self.call("slapos.put.v0.software_instance_bang",
                         {"instance_guid": instance_guid, "message": message})

    def set_requested_titles(self, instance_guid: str, titles: list[str]) -> JSONDict:
        """``slapos.put.v0.software_instance_requested_list``: after a successful pass, what the
        instance requested in it (the master destroys what it no longer requests)."""
        return self.call("slapos.put.v0.software_instance_requested_list",
                         {"instance_guid": instance_guid, "title_list": titles})


    # -- identity and administration (issue 9) ------------------------------------------------

    def whoami(self) -> JSONDict:
        """``slapos.get.v0.whoami``: who the master takes the caller for (kind, name, admin)."""
        return self.call("slapos.get.v0.whoami", {})

    def create_compute_node_token(self, title: str | None = None, ttl: int | None = None,
                                  computer_guid: str | None = None) -> JSONDict:
        """``slapos.post.v0.compute_node_token`` (admin): a single-use enrolment token for a new
        computer, or for re-enrolling the existing `computer_guid`; ``token``, ``expires_at``."""
        return self.call("slapos.post.v0.compute_node_token",
                         _present(title=title, ttl=ttl, computer_guid=computer_guid))

    def revoke_compute_node(self, computer_guid: str) -> JSONDict:
        """``slapos.post.v0.compute_node_revocation``: refuse every certificate of the computer and
        of its partitions; ``revoked`` counts them."""
        return self.call("slapos.post.v0.compute_node_revocation", {"computer_guid": computer_guid})

    def revoke_user(self, name: str) -> JSONDict:
        """``slapos.post.v0.user_revocation`` (admin): refuse every certificate and token of `name`."""
        return self.call("slapos.post.v0.user_revocation", {"name": name})

    def list_compute_nodes(self) -> list[JSONDict]:
        """``slapos.allDocs.v0.compute_node_list``: the computers the caller may see (``result_list``)."""
        return _result_list(self.call("slapos.allDocs.v0.compute_node_list", {}))

    def get_compute_node(self, computer_guid: str) -> JSONDict:
        """``slapos.get.v0.compute_node``: one computer with its certificates and partitions."""
        return self.call("slapos.get.v0.compute_node", {"computer_guid": computer_guid})

    def tag_compute_node(self, computer_guid: str, tags: JSONDict | None = None,
                         unset: list[str] | None = None) -> JSONDict:
        """``slapos.put.v0.compute_node_tags``: set `tags` and remove the `unset` names; ``tags``."""
        return self.call("slapos.put.v0.compute_node_tags",
                         {"computer_guid": computer_guid, "set": tags or {}, "unset": unset or []})

    def set_compute_node_network(self, computer_guid: str, network_guid: str) -> JSONDict:
        """``slapos.put.v0.compute_node_network``: put the computer in a network ("" takes it out)."""
        return self.call("slapos.put.v0.compute_node_network",
                         {"computer_guid": computer_guid, "network_guid": network_guid})

    def set_compute_node_allocation_scope(self, computer_guid: str, scope: str) -> JSONDict:
        """``slapos.put.v0.compute_node_allocation_scope``: ``open``, ``close`` or ``drain``."""
        return self.call("slapos.put.v0.compute_node_allocation_scope",
                         {"computer_guid": computer_guid, "allocation_scope": scope})

    def set_compute_node_builder(self, computer_guid: str, builder: bool) -> JSONDict:
        """``slapos.put.v0.compute_node_builder``: let the computer fill the binary cache, or not (admin)."""
        return self.call("slapos.put.v0.compute_node_builder", {"computer_guid": computer_guid, "builder": builder})

    # -- the binary cache (nodes) ---------------------------------------------------------------

    def get_binary_cache_entry(self, key: str) -> JSONDict:
        """``slapos.get.v0.binary_cache_entry``: the complete entry of `key` (RemoteError NOT_CACHED)."""
        return self.call("slapos.get.v0.binary_cache_entry", {"key": key})

    def get_binary_cache_chunk(self, key: str, offset: int, length: int) -> bytes:
        """``slapos.get.v0.binary_cache_chunk``: up to `length` bytes of the entry from `offset`."""
        answer = self.call("slapos.get.v0.binary_cache_chunk", {"key": key, "offset": offset, "length": length})
        try:
            return base64.b64decode(answer["data"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise ClientError("the master answered a binary cache chunk that is not base64") from None

    def begin_binary_cache_upload(self, key: str, software_release_uri: str, platform: str, size: int,
                                  sha256: str) -> JSONDict:
        """``slapos.post.v0.binary_cache_upload`` (builders only)."""
        return self.call("slapos.post.v0.binary_cache_upload", {
            "key": key, "software_release_uri": software_release_uri, "platform": platform, "size": size,
            "sha256": sha256})

    def put_binary_cache_chunk(self, key: str, offset: int, data: bytes) -> JSONDict:
        return self.call("slapos.put.v0.binary_cache_chunk",
                         {"key": key, "offset": offset, "data": base64.b64encode(data).decode()})

    def commit_binary_cache_upload(self, key: str) -> JSONDict:
        return self.call("slapos.put.v0.binary_cache_commit", {"key": key})

    def list_binary_cache_entries(self, uploader: str | None = None,
                                  software_release_uri: str | None = None) -> list[JSONDict]:
        """``slapos.allDocs.v0.binary_cache_entry_list`` (admin): every entry, newest first."""
        return _result_list(self.call("slapos.allDocs.v0.binary_cache_entry_list",
                                      _present(uploader=uploader, software_release_uri=software_release_uri)))

    def remove_binary_cache_entries(self, key: str | None = None, uploader: str | None = None) -> list[JSONDict]:
        """``slapos.remove.v0.binary_cache_entry`` (admin): remove the entry `key` (RemoteError
        NOT_CACHED if none) or every entry `uploader` uploaded; the entries removed."""
        return _result_list(self.call("slapos.remove.v0.binary_cache_entry", _present(key=key, uploader=uploader)))

    def create_user(self, name: str, admin: bool = False, ttl: int | None = None) -> JSONDict:
        """``slapos.post.v0.user`` (admin): a new user and its enrolment ``token``."""
        return self.call("slapos.post.v0.user", {"name": name, "admin": bool(admin), **_present(ttl=ttl)})

    def create_user_token(self, name: str, ttl: int | None = None) -> JSONDict:
        """``slapos.post.v0.user_token`` (admin): a new enrolment token for the existing user `name`."""
        return self.call("slapos.post.v0.user_token", {"name": name, **_present(ttl=ttl)})

    def create_api_token(self, title: str | None = None, ttl: int | None = None, *,
                         never_expires: bool = False) -> JSONDict:
        """``slapos.post.v0.api_token``: an API token of the caller's; ``ttl`` seconds, the master's
        default when None, no expiry with `never_expires`."""
        body = _present(title=title, ttl=ttl)
        if never_expires:
            body["ttl"] = None
        return self.call("slapos.post.v0.api_token", body)

    def list_api_tokens(self) -> list[JSONDict]:
        """``slapos.allDocs.v0.api_token_list``: the caller's tokens (an admin's: all)."""
        return _result_list(self.call("slapos.allDocs.v0.api_token_list", {}))

    def revoke_api_token(self, token_id: str) -> JSONDict:
        """``slapos.remove.v0.api_token``: revoke the token `token_id` (its public id)."""
        return self.call("slapos.remove.v0.api_token", {"token_id": token_id})

    def list_audit_events(self, since: float | None = None, limit: int | None = None) -> list[JSONDict]:
        """``slapos.allDocs.v0.audit_event_list``: events newest first, from `since` (epoch seconds)."""
        return _result_list(self.call("slapos.allDocs.v0.audit_event_list", _present(since=since, limit=limit)))

def _decode(method: str, response: requests.Response) -> Any:
    """The JSON answer of a 2xx response; a RemoteError for anything else."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"the master answered {method} with something that is not JSON: "
                              f"{_first_line(response.text)!r}", "BAD_ANSWER", status) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("title"):
        code = body.get("code") or f"HTTP_{status}"
        raise RemoteError(str(body["title"]), str(code), int(body.get("status") or status))
    line = _first_line(response.text) or f"{status} {response.reason or ''}".strip()
    raise RemoteError(line, f"HTTP_{status}", status)


def _present(**fields: Any) -> JSONDict:
    """The fields that were given (None means "let the master decide")."""
    return {key: value for key, value in fields.items() if value is not None}


def _result_list(answer: Any) -> list[JSONDict]:
    if isinstance(answer, dict) and isinstance(answer.get("result_list"), list):
        return answer["result_list"]
    raise RemoteError("the master's answer has no result_list", "BAD_ANSWER", 200)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return ""


def _reason(error: BaseException) -> str:
    """A short reason ("Connection refused") from requests' long nested messages."""
    match = _ERRNO.search(str(error))
    if match:
        return match.group(1).strip()
    text = str(error)
    return text if len(text) < 200 else type(error).__name__


def _refused(error: BaseException) -> bool:
    """Whether the connection was refused or reset: a ConnectionRefusedError or ConnectionResetError
    among the exceptions requests and urllib3 wrap (their causes, ``reason`` and arguments)."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (ConnectionRefusedError, ConnectionResetError)):
            return True
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        todo.extend(item for item in linked if isinstance(item, BaseException))
    return False


def _seconds(deadline: tuple[float, float]) -> str:
    return f"{max(deadline):g}s"


# -- the session: one resend of a call on a reused connection the master had closed ------------

class _SendRecorded:
    """A connection that remembers whether sending its last request broke (urllib3 goes on to read
    the answer when it does, which then fails too)."""

    send_failed = False

    def request(self, *args: Any, **kwargs: Any) -> None:  # noqa: D401 - urllib3's signature
        self.send_failed = False
        try:
            super().request(*args, **kwargs)  # type: ignore[misc]
        except (ConnectionResetError, BrokenPipeError):
            self.send_failed = True
            raise


class _HTTPConnection(_SendRecorded, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_SendRecorded, urllib3.connection.HTTPSConnection):
    pass


def _broke_before_answer(error: BaseException, conn: Any) -> bool:
    """Whether `error` says no byte of an answer came: the connection ended where a status line
    was expected, or it was reset while the request was sent."""
    if isinstance(error, http.client.RemoteDisconnected):
        return True
    return isinstance(error, (ConnectionResetError, BrokenPipeError)) and getattr(conn, "send_failed", False)


class _ResendOnce:
    """urllib3 pool behaviour: a request on a *reused* connection that broke before any answer is
    made once more on a new connection."""

    def _make_request(self, conn: Any, method: str, url: str, body: Any = None, *args: Any,
                      **kwargs: Any) -> Any:
        reused = not getattr(conn, "is_closed", getattr(conn, "sock", None) is None)
        try:
            return super()._make_request(conn, method, url, body, *args, **kwargs)  # type: ignore[misc]
        except OSError as error:
            if not (reused and _broke_before_answer(error, conn) and isinstance(body, (bytes, str, type(None)))):
                raise
            log.debug("%s %s: the kept-alive connection was closed (%s); sent again", method, url, error)
        conn.close()
        return super()._make_request(conn, method, url, body, *args, **kwargs)  # type: ignore[misc]


class _HTTPPool(_ResendOnce, urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_ResendOnce, urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def new_session() -> requests.Session:
    """A `requests.Session` whose calls survive the master closing an idle kept-alive connection at
    the moment it is reused (see the module docstring)."""
    session = requests.Session()
    adapter = _Adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def connect(master_url: str, *, key_file: str | None = None, cert_file: str | None = None,
            partition: tuple[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
            ca_file: str | None = None, api_token: str | None = None) -> MasterClient:
    """A client of `master_url` as a configuration describes it: the certificate pair only when
    both files are named, the master verified against `ca_file` (requests' default CAs without
    one), `api_token` as a Bearer header. Every side (client commands, node, watchdog, recipes)
    builds its client here, so how a configuration becomes a connection is decided once."""
    cert = (cert_file, key_file) if cert_file and key_file else None
    return MasterClient(master_url, timeout=timeout, partition=partition, cert=cert, ca_file=ca_file,
                        api_token=api_token)
