"""partita:template's Jinja2 mode (engine = jinja2, or recipe = partita:jinja2), through real buildout runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import check_fails, check_ok, run_buildout

TEMPLATE = """\
listen {{ host }}:{{ settings.port }}
{% for name in parameters.names -%}
user {{ name }}
{% endfor -%}
python {{ python }}
later ${slap-configuration:ipv4-random}
"""


def write_profile(directory: Path, *lines: str, recipe: str = "partita:jinja2") -> None:
    parameters = json.dumps({"names": ["ada", "grace"]})
    (directory / "buildout.cfg").write_text("\n".join([
        "[buildout]", "parts = file", "newest = false",
        "[settings]", "host = 127.0.1.1", "port = 8080", f"parameters = {parameters}",
        "[file]", f"recipe = {recipe}", "output = out.txt", *lines,
    ]) + "\n")


CONTEXT = ["context =", "    key host settings:host", "    section settings settings",
           "    json parameters settings:parameters", "    raw python /usr/bin/python3"]


@pytest.mark.parametrize("recipe_lines", [("partita:jinja2", []), ("partita:template", ["engine = jinja2"])])
def test_renders_the_context(toolchain: Toolchain, tmp_path: Path, recipe_lines: tuple[str, list[str]]) -> None:
    recipe, lines = recipe_lines
    (tmp_path / "t.jinja2").write_text(TEMPLATE)
    write_profile(tmp_path, "url = t.jinja2", *CONTEXT, *lines, recipe=recipe)
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "out.txt").read_text() == (
        "listen 127.0.1.1:8080\nuser ada\nuser grace\npython /usr/bin/python3\n"
        "later ${slap-configuration:ipv4-random}\n")  # ${…} is left to the instance buildout


def test_inline_templates_and_this_section_s_options(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path, "greeting = Hello", "inline = {{ greeting }} {{ host }}!",
                  "context =", "    key greeting :greeting", "    key host settings:host")
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "out.txt").read_text() == "Hello 127.0.1.1!"


def test_a_changed_context_value_is_rendered_again(toolchain: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "t.jinja2").write_text("{{ host }}\n")
    write_profile(tmp_path, "url = t.jinja2", "context = key host settings:host")
    check_ok(run_buildout(toolchain, tmp_path))
    text = (tmp_path / "buildout.cfg").read_text().replace("host = 127.0.1.1", "host = 127.0.1.2")
    (tmp_path / "buildout.cfg").write_text(text)
    check_ok(run_buildout(toolchain, tmp_path))
    assert (tmp_path / "out.txt").read_text() == "127.0.1.2\n"


@pytest.mark.parametrize(("template", "context", "expected"), [
    ("{{ nope }}", "key host settings:host", "'nope' is undefined"),
    ("{{ settings.nope }}", "section settings settings", "has no attribute 'nope'"),
    ("{% for %}", "key host settings:host", "t.jinja2, line 1:"),
    ("{{ host }}", "key host settings:nope", "context references settings:nope, which does not exist"),
    ("{{ host }}", "key host nowhere:x", "context references the section [nowhere], which does not exist"),
    ("{{ host }}", "json host settings:host", "context host: settings:host is not JSON"),
    ("{{ host }}", "value host settings:host", "must be '<kind> <name> <value>'"),
    ("{{ host }}", "key 1host settings:host", "is not a valid variable name"),
])
def test_errors_are_one_line_and_write_nothing(toolchain: Toolchain, tmp_path: Path, template: str,
                                               context: str, expected: str) -> None:
    (tmp_path / "t.jinja2").write_text(template)
    write_profile(tmp_path, "url = t.jinja2", f"context = {context}")
    error = check_fails(run_buildout(toolchain, tmp_path), "[file]", expected)
    assert "\n" not in error
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(("lines", "expected"), [
    (["inline = x", "engine = mako"], "option 'engine' must be one of substitute, jinja2"),
])
def test_bad_engine(toolchain: Toolchain, tmp_path: Path, lines: list[str], expected: str) -> None:
    write_profile(tmp_path, *lines, recipe="partita:template")
    check_fails(run_buildout(toolchain, tmp_path), "[file]", expected)


def test_context_needs_the_jinja2_engine(toolchain: Toolchain, tmp_path: Path) -> None:
    write_profile(tmp_path, "inline = x", "context = key host settings:host", recipe="partita:template")
    check_fails(run_buildout(toolchain, tmp_path), "[file]", "option 'context' needs engine = jinja2")
