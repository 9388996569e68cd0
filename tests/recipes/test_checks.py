"""recipes.checks: the built-in promise checks, called in-process."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from partita.recipes.checks import Command, FileExists, SocketListening, UrlAvailable
from partita.slap.promise import PromiseFailed


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    """A server on 127.0.0.1 answering /ok with 200, /gone with 404 and /moved with a 302 to /ok."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = {"/ok": 200, "/gone": 404, "/moved": 302}.get(self.path, 500)
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_available_compares_the_status(web: str) -> None:
    assert UrlAvailable({"url": f"{web}/ok"}).check() == f"{web}/ok answered HTTP 200"
    assert UrlAvailable({"url": f"{web}/gone", "http-code": "404"}).check() == f"{web}/gone answered HTTP 404"
    with pytest.raises(PromiseFailed, match=r"/gone answered HTTP 404, expected 200$"):
        UrlAvailable({"url": f"{web}/gone"}).check()


def test_url_available_does_not_follow_redirects(web: str) -> None:
    with pytest.raises(PromiseFailed, match="answered HTTP 302, expected 200"):
        UrlAvailable({"url": f"{web}/moved"}).check()


def test_url_available_ignores_proxy_settings(web: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert UrlAvailable({"url": f"{web}/ok"}).check().endswith("HTTP 200")


def test_socket_listening_takes_ipv6_hosts_with_or_without_brackets() -> None:
    with pytest.raises(PromiseFailed, match=r"^nothing accepts connections on \[::1\]:9: "):
        SocketListening({"host": "[::1]", "port": "9"}).check()


def test_a_missing_setting_is_a_failure_not_a_crash() -> None:
    with pytest.raises(PromiseFailed, match="the promise's config has no 'path'"):
        FileExists({}).check()


def test_command_runs_with_sh_and_a_deadline() -> None:
    assert Command({"command": "printf 'a\\nb'"}).check() == "a b"

    class Quick(Command):
        timeout = 0.5

    with pytest.raises(PromiseFailed, match=r"did not finish within 0\.5s"):
        Quick({"command": "sleep 30 & sleep 30"}).check()
