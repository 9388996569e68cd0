"""The build user cannot rename or replace what every buildout runs (issue 10).

`node.software_root`: in root mode ``software_root`` is root's; the build user (``slapsoft``) owns
only the software directories in it. The tests play the build user (a forked child that drops to
it) against a real root node, then check that the next passes use the genuine toolchain and
records; and that a start repairs an older layout and refuses what another user made.
"""
from __future__ import annotations

import errno
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node import software_root
from partita.node.config import node_config
from partita.node.desired import release_digest
from partita.node.errors import SetupError
from partita.node.toolchain import MARKER, RECORD_SUFFIX
from partita.slap.config import read_config
from tests.node.test_isolation import as_user, denied
from tests.support.node import HELLO_WEB, NodeEnv, free_port

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def env() -> Iterator[NodeEnv]:
    env = NodeEnv(partitions=1)
    try:
        env.format()
        env.supply_and_request("web", greeting="genuine", port=str(free_port()))
        env.software()
        env.instance()
        assert env.info("web")["status_reason"] == "started"
        yield env
    finally:
        env.close()


def _config(env: NodeEnv):  # type: ignore[no-untyped-def]
    return node_config(read_config(str(env.config_path)))


def _records(env: NodeEnv) -> Path:
    return env.root / "soft" / ".locks" / f"{release_digest(str(HELLO_WEB))}{RECORD_SUFFIX}"


def test_software_root_is_roots_and_the_build_user_owns_only_what_it_builds(env: NodeEnv) -> None:
    soft = env.root / "soft"
    info = soft.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o755)
    build = soft / release_digest(str(HELLO_WEB))
    assert build.owner() == "slapsoft"
    assert (soft / ".locks").stat().st_uid == 0
    assert stat.S_IMODE((soft / ".locks").stat().st_mode) == 0o700


def test_the_build_user_can_neither_rename_nor_replace_the_node_s_entries(env: NodeEnv) -> None:
    config = _config(env)
    soft, toolchain = config.software_root, config.toolchain_root
    key = next(path for path in toolchain.iterdir() if (path / MARKER).is_file())
    records = _records(env)
    genuine = records.read_text()
    attempts = {
        "rename .locks": lambda: os.rename(soft / ".locks", soft / "locks-old"),
        "replace .locks with a link": lambda: os.symlink("/tmp", soft / ".locks2"),
        "plant .toolchain": lambda: os.symlink("/tmp", soft / ".toolchain"),
        "make .toolchain": lambda: os.mkdir(soft / ".toolchain"),
        "rename the toolchain directory": lambda: os.rename(toolchain, toolchain.with_name("old-toolchain")),
        "rename one toolchain": lambda: os.rename(key, toolchain / "stolen"),
        "replace the marker": lambda: os.symlink("/tmp", key / "new-marker"),
        "remove the marker": lambda: os.unlink(key / MARKER),
        "write the records": lambda: records.write_text("/tmp/evil\n"),
        "plant a record": lambda: os.symlink("/tmp/evil", records.with_name("x" + RECORD_SUFFIX)),
        "rename the build's directory": lambda: os.rename(soft / release_digest(str(HELLO_WEB)), soft / "moved"),
    }
    for what, attempt in attempts.items():
        assert denied("slapsoft", attempt) in (errno.EACCES, errno.EPERM), what
    assert records.read_text() == genuine
    assert not (soft / ".toolchain").exists() and (key / MARKER).is_file()


def test_the_next_build_uses_the_genuine_toolchain_and_records(env: NodeEnv) -> None:
    """The build user wipes its completed build (it may: it owns it): the rebuild runs with the
    node's toolchain and the record names it, not anything the build user could plant."""
    config = _config(env)
    build = config.software_root / release_digest(str(HELLO_WEB))
    as_user("slapsoft", lambda: os.unlink(build / ".completed"))
    env.software()
    assert (build / ".completed").is_file()
    recorded = [Path(line) for line in _records(env).read_text().splitlines()]
    assert recorded and all(path.parent == config.toolchain_root for path in recorded)
    assert all((path / MARKER).stat().st_uid == 0 for path in recorded)
    env.instance()
    assert env.info("web")["status_reason"] == "started"


# -- the start's check and repair, on a directory of their own ------------------------------------

@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A config file for a root node whose software_root is in `tmp_path` (0755, root's)."""
    tmp_path.chmod(0o755)
    soft = tmp_path / "soft"
    soft.mkdir()
    cfg = tmp_path / "slapos.cfg"
    cfg.write_text(f"[slapos]\ncomputer_id = COMP-1\nmaster_url = http://127.0.0.1:1\n"
                   f"instance_root = {tmp_path / 'srv'}\nsoftware_root = {soft}\n")
    yield cfg, soft


def _nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


def test_a_software_root_the_build_user_owned_is_given_back_to_root(layout: tuple[Path, Path]) -> None:
    cfg, soft = layout
    os.chown(soft, _nobody().pw_uid, _nobody().pw_gid)
    soft.chmod(0o775)
    software_root.secure(node_config(read_config(str(cfg))))
    info = soft.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o755)


@pytest.mark.parametrize("name", [".locks", ".toolchain"])
def test_an_entry_another_user_made_is_refused_in_one_line(layout: tuple[Path, Path], name: str) -> None:
    cfg, soft = layout
    (soft / name).mkdir()
    os.chown(soft / name, _nobody().pw_uid, -1)
    with pytest.raises(SetupError) as caught:
        software_root.secure(node_config(read_config(str(cfg))))
    assert str(soft / name) in str(caught.value) and "\n" not in str(caught.value)


def test_a_link_in_place_of_the_toolchain_directory_is_refused(layout: tuple[Path, Path]) -> None:
    cfg, soft = layout
    (soft / ".toolchain").symlink_to("/tmp")
    with pytest.raises(SetupError, match="is a link"):
        software_root.secure(node_config(read_config(str(cfg))))


def test_a_software_root_in_a_directory_others_write_is_refused(layout: tuple[Path, Path]) -> None:
    cfg, soft = layout
    soft.parent.chmod(0o777)
    try:
        with pytest.raises(SetupError, match="users other than root may write"):
            software_root.secure(node_config(read_config(str(cfg))))
    finally:
        soft.parent.chmod(0o755)


def test_the_node_s_own_entries_pass(layout: tuple[Path, Path]) -> None:
    cfg, soft = layout
    (soft / ".locks").mkdir(mode=0o700)
    (soft / ".toolchain").mkdir(mode=0o755)
    software_root.secure(node_config(read_config(str(cfg))))
    assert (soft / ".locks").is_dir()
