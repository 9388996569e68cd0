"""partita:template, through real buildout runs."""
from __future__ import annotations

import hashlib
import http.server
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import check_fails, check_ok, run_buildout

TEMPLATE = (
    "host = ${settings:host}\n"
    "self = ${:output}\n"
    "later = $${slap-configuration:ipv4-random}\n"
    "shell = $HOME $$ $(pwd) {braces}\n"
)
RENDERED_BODY = "later = ${slap-configuration:ipv4-random}\nshell = $HOME $$ $(pwd) {braces}\n"


def write_profile(directory: Path, *lines: str, parts: str = "file") -> None:
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", f"parts = {parts}", "newest = false",
        "[settings]", "host = 127.0.1.1",
        "[file]", "recipe = partita:template", *lines,
    ]) + "\n")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving a directory: (its URL, the directory)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("style", ["path", "relative", "file-url"])
def test_url_content_is_substituted_like_buildout(toolchain: Toolchain, tmp_path: Path, style: str) -> None:
    source = tmp_path / "t.in"
    source.write_text(TEMPLATE)
    url = {"path": str(source), "relative": "t.in", "file-url": source.as_uri()}[style]
    write_profile(tmp_path, f"url = {url}", "output = etc/out.txt")
    check_ok(run_buildout(toolchain, tmp_path))
    output = tmp_path / "etc" / "out.txt"
    assert output.read_text() == f"host = 127.0.1.1\nself = {output}\n" + RENDERED_BODY
    assert mode_of(output) == 0o644


def test_http_url_with_checksums(toolchain: Toolchain, tmp_path: Path, web_root: tuple[str, Path]) -> None:
    base, root = web_root
    (root / "t.in").write_text("#!/bin/sh\necho ${settings:host}\n")
    data = (root / "t.in").read_bytes()
    write_profile(tmp_path, f"url = {base}/t.in", "output = run.sh",
                  f"md5sum = {hashlib.md5(data).hexdigest()}", f"sha256sum = {hashlib.sha256(data).hexdigest()}")
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "run.sh").read_text() == "#!/bin/sh\necho 127.0.1.1\n"
    assert mode_of(tmp_path / "run.sh") == 0o755  # a shebang makes it executable


def test_a_checksum_mismatch_writes_nothing(toolchain: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "t.in").write_text("x\n")
    write_profile(tmp_path, "url = t.in", "output = out.txt", f"sha256sum = {'0' * 64}")
    check_fails(run_buildout(toolchain, tmp_path), "[file]", "has sha256sum", "expected 0000")
    assert not (tmp_path / "out.txt").exists()


def test_inline_is_substituted_once_by_buildout_and_written_as_is(toolchain: Toolchain, tmp_path: Path) -> None:
    """zc.buildout 6 substitutes the option and keeps ``$${`` as written; the recipe adds nothing.
    (A value holding ``${`` inserted by buildout is written verbatim: tests/recipes/test_slapconfiguration.py.)"""
    write_profile(tmp_path, "inline =", "    listen ${settings:host}", "    user {name} $${HOME} $$ $(pwd)",
                  "output = out.conf", "mode = 0600")
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "out.conf").read_text() == "listen 127.0.1.1\nuser {name} $${HOME} $$ $(pwd)"
    assert mode_of(tmp_path / "out.conf") == 0o600


def test_an_unknown_reference_in_inline_is_buildout_s_error(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path, "inline = ${settings:port}", "output = out.txt")
    check_fails(run_buildout(toolchain, tmp_path), "Referenced option does not exist: settings port")
    assert not (tmp_path / "out.txt").exists()


def test_a_changed_template_is_rendered_again(toolchain: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "t.in").write_text("one ${settings:host}\n")
    write_profile(tmp_path, "url = t.in", "output = out.txt")
    check_ok(run_buildout(toolchain, tmp_path))
    (tmp_path / "t.in").write_text("two ${settings:host}\n")  # the options stay the same: update()
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "out.txt").read_text() == "two 127.0.1.1\n"


def test_removing_the_part_removes_the_file(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path, "inline = x", "output = out.txt")
    check_ok(run_buildout(toolchain, tmp_path))
    write_profile(tmp_path, "inline = x", "output = out.txt", parts="")
    check_ok(run_buildout(toolchain, tmp_path))
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(("template", "expected"), [
    ("${settings:port}", "references ${settings:port}, which does not exist"),
    ("${nowhere:x}", "references ${nowhere:x}, which does not exist"),
    ("${HOME}", "holds ${HOME}, which is not a ${section:option} reference"),
])
def test_bad_references_name_themselves(toolchain: Toolchain, tmp_path: Path, template: str,
                                        expected: str) -> None:
    (tmp_path / "t.in").write_text(f"a\n{template}\n")
    write_profile(tmp_path, "url = t.in", "output = out.txt")
    check_fails(run_buildout(toolchain, tmp_path), "[file]", expected)
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(("lines", "expected"), [
    (["output = out.txt"], "needs exactly one of the options 'url' and 'inline'"),
    (["output = out.txt", "inline = x", "url = t.in"], "needs exactly one of the options 'url' and 'inline'"),
    (["inline = x"], "needs option 'output'"),
    (["output = out.txt", "url = missing.in"], "cannot read missing.in: No such file or directory"),
    (["output = out.txt", "url = ftp://host/t.in"], "only paths, file://, http:// and https://"),
    (["output = out.txt", "inline = x", "mode = 999"], "option 'mode' must be an octal file mode"),
])
def test_bad_options_are_one_line_errors(toolchain: Toolchain, tmp_path: Path, lines: list[str],
                                         expected: str) -> None:
    write_profile(tmp_path, *lines)
    check_fails(run_buildout(toolchain, tmp_path), "[file]", expected)
    assert not (tmp_path / "out.txt").exists()
