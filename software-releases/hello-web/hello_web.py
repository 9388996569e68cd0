"""hello-web: answer GET / with a greeting, in plain text (the service of the hello-web SR).

    python hello_web.py --host 127.0.1.1 --port 8080 --greeting-file etc/greeting.txt

It runs in the foreground until SIGTERM or SIGINT. It reads the greeting once, at start: the
instance buildout changes the service's wrapper when the greeting changes, so the node restarts
it. When it cannot start (bad port, address in use, unreadable greeting) it prints one line on
stderr and exits with status 1. Standard library only.
"""
from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType


class Failure(Exception):
    """Why the service cannot start, in one line."""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, greeting: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.address_family = family
        self.greeting = greeting
        super().__init__((host, port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "hello-web/1.0"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/":
            self._answer(404, "not found")
            return
        self._answer(200, self.server.greeting)

    def do_HEAD(self) -> None:
        self.do_GET()

    def _answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def parse_port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise Failure(f"invalid port {text!r}: expected a number from 1 to 65535")
    return int(text)


def read_greeting(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise Failure(f"cannot read the greeting file {path}: {getattr(error, 'strerror', None) or error}") from None


def start(host: str, port_text: str, greeting_file: str) -> Server:
    host = host.strip("[]")
    port = parse_port(port_text)
    greeting = read_greeting(greeting_file)
    try:
        return Server(host, port, greeting)
    except OSError as error:
        raise Failure(f"cannot listen on {host} port {port}: {error.strerror or error}") from None


def stop_on_signal(server: Server) -> None:
    """SIGTERM and SIGINT end serve_forever() cleanly (from another thread, as it requires)."""
    def handle(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Answer GET / with a greeting.")
    parser.add_argument("--host", required=True, help="address to listen on (IPv4 or IPv6)")
    parser.add_argument("--port", required=True, help="TCP port to listen on")
    parser.add_argument("--greeting-file", required=True, help="file holding the greeting text")
    args = parser.parse_args(argv)
    try:
        server = start(args.host, args.port, args.greeting_file)
    except Failure as error:
        print(f"hello-web: {error}", file=sys.stderr)
        return 1
    stop_on_signal(server)
    print(f"hello-web: listening on {args.host} port {server.server_address[1]}", flush=True)
    with server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
