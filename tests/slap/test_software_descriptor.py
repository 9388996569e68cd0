"""`slap.software_descriptor`: the serialisation a release declares in ``software.cfg.json``,
read from a local path, a file: URL or over HTTP on loopback (issue 11)."""
from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from partita.slap.software_descriptor import (
    DescriptorProblem, declared_serialisation, descriptor_location, serialisation_of,
)

HELLO_WEB = Path(__file__).resolve().parents[2] / "software-releases" / "hello-web" / "software.cfg"


def release(directory: Path, descriptor: object | None) -> str:
    """A release directory with a software.cfg and, unless None, its software.cfg.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "software.cfg").write_text("[buildout]\nparts =\n")
    if descriptor is not None:
        text = descriptor if isinstance(descriptor, str) else json.dumps(descriptor)
        (directory / "software.cfg.json").write_text(text)
    return str(directory / "software.cfg")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on loopback serving a directory: its base URL and the directory."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_declared_serialisation_rule() -> None:
    assert declared_serialisation({"serialisation": "xml"}) == "xml"
    assert declared_serialisation({"serialisation": "json-in-xml", "name": "x"}) == "json-in-xml"
    assert declared_serialisation({"name": "no serialisation"}) is None
    with pytest.raises(DescriptorProblem, match="unknown serialisation 'yaml'"):
        declared_serialisation({"serialisation": "yaml"})
    with pytest.raises(DescriptorProblem, match="list"):
        declared_serialisation(["xml"])
    assert descriptor_location("https://x/sr/software.cfg") == "https://x/sr/software.cfg.json"


def test_hello_web_declares_xml() -> None:
    assert serialisation_of(str(HELLO_WEB)) == "xml"
    assert serialisation_of(HELLO_WEB.as_uri()) == "xml"


def test_local_release_without_descriptor_declares_nothing(tmp_path: Path) -> None:
    assert serialisation_of(release(tmp_path / "sr", None)) is None
    assert serialisation_of(str(tmp_path / "nowhere" / "software.cfg")) is None


def test_a_bad_descriptor_is_a_warning_and_declares_nothing(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert serialisation_of(release(tmp_path / "bad", "{not json")) is None
    assert "not JSON" in caplog.text
    caplog.clear()
    assert serialisation_of(release(tmp_path / "odd", {"serialisation": "pickle"})) is None
    assert "unknown serialisation 'pickle'" in caplog.text


def test_descriptor_over_http(served: tuple[str, Path]) -> None:
    base, root = served
    release(root / "typed", {"serialisation": "json-in-xml"})
    release(root / "bare", None)
    assert serialisation_of(f"{base}/typed/software.cfg") == "json-in-xml"
    assert serialisation_of(f"{base}/bare/software.cfg") is None  # 404: no descriptor


def test_a_host_that_does_not_answer_costs_the_short_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        started = time.monotonic()
        assert serialisation_of(f"http://127.0.0.1:{port}/sr/software.cfg", timeout=0.5) is None
    assert time.monotonic() - started < 3
    assert "no answer within 0.5s" in caplog.text
