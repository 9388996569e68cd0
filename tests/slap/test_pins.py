"""slap.pins: the wheels a release's partita:pip parts pin, read from its profiles."""
from __future__ import annotations

from pathlib import Path

import pytest

from partita.slap.pins import PinError, parse_pins, release_requirements

A, B = "a" * 64, "b" * 64


def test_pins_are_normalised_sorted_and_carry_every_digest() -> None:
    pins = parse_pins("Zope.Interface==6.0 attrs==23.1", {"sha256-zope-interface": f"{B} sha256:{A}",
                                                           "sha256-attrs": A}, "w")
    assert pins == [("attrs", "23.1", (A,)), ("zope-interface", "6.0", (A, B))]


@pytest.mark.parametrize(("packages", "options", "message"), [
    ("attrs", {}, "pinned as name==version"),
    ("attrs==1 attrs==1", {"sha256-attrs": A}, "listed twice"),
    ("attrs==1", {}, "needs option 'sha256-attrs'"),
    ("attrs==1", {"sha256-attrs": "abc"}, "not a sha256"),
    ("", {}, "needs option 'packages'"),
])
def test_bad_pins_are_named(packages: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(PinError, match=message):
        parse_pins(packages, options, "w")


def test_a_release_follows_its_local_extends(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "base.cfg").write_text(
        "[buildout]\nextends = ../other.cfg\n[w]\nrecipe = partita:pip\npackages =\n    attrs==1\n"
        f"sha256-attrs = {A}\n")
    (tmp_path / "other.cfg").write_text(f"[x]\nrecipe = partita:pip\npackages = six==2\nsha256-six = {B}\n"
                                        "[y]\nrecipe = partita:template\n")
    (tmp_path / "software.cfg").write_text("[buildout]\nextends = common/base.cfg\n")
    assert release_requirements(tmp_path / "software.cfg") == (
        f"attrs==1 --hash=sha256:{A}\nsix==2 --hash=sha256:{B}\n")


@pytest.mark.parametrize(("text", "message"), [
    ("[buildout]\nextends = https://example.invalid/x.cfg\n", "only local profiles"),
    ("[buildout]\nextends = missing.cfg\n", "cannot read the profile"),
    (f"[w]\nrecipe = partita:pip\npackages = ${{v:list}}\nsha256-a = {A}\n", r"\$\{\.\.\.\} references"),
    ("no section\n", "not a buildout profile"),
])
def test_what_cannot_be_read_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "software.cfg").write_text(text)
    with pytest.raises(PinError, match=message):
        release_requirements(tmp_path / "software.cfg")


def test_a_loop_of_extends_ends(tmp_path: Path) -> None:
    (tmp_path / "a.cfg").write_text("[buildout]\nextends = b.cfg\n")
    (tmp_path / "b.cfg").write_text(f"[buildout]\nextends = a.cfg\n[w]\nrecipe = partita:pip\npackages = x==1\n"
                                    f"sha256-x = {A}\n")
    assert release_requirements(tmp_path / "a.cfg") == f"x==1 --hash=sha256:{A}\n"
