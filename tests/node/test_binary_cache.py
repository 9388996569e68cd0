"""The node's binary cache (issue 13): the key, and the pack and unpack the software user runs,
played by an abusing archive and an abusing build user. As root they run as ``slapsoft``."""
from __future__ import annotations

import io
import os
import pwd
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from partita.node import binary_cache
from partita.node.binary_cache import BinaryCacheError
from partita.node.config import DEFAULT_TOOLCHAIN_PYTHON
from partita.node.runner import RunAs

PYTHON = Path(DEFAULT_TOOLCHAIN_PYTHON)
SECRET = b"root-only secret 3f9a"


@dataclass
class Place:
    root: Path
    software: Path
    cache: Path
    outside: Path
    user: RunAs

    def owned(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if self.user.switches:
            for made in (path, *path.parents[:len(path.relative_to(self.root).parts) - 1]):
                os.chown(made, self.user.uid, self.user.gid)  # type: ignore[arg-type]
        return path


@pytest.fixture
def place() -> Iterator[Place]:
    """Directories the software user owns (reachable by it: not under a 0700 temporary directory)."""
    root = Path(tempfile.mkdtemp(prefix="pt-bincache-", dir="/tmp"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("slapsoft")
        user = RunAs("slapsoft", entry.pw_uid, entry.pw_gid)
    else:
        user = RunAs(pwd.getpwuid(os.geteuid()).pw_name)
    found = Place(root, root / "software" / "0123", root / "cache", root / "outside", user)
    for path in (root / "software", found.software, found.cache, found.outside):
        found.owned(path)
    try:
        yield found
    finally:
        shutil.rmtree(root)


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BufferedRandom:
    stream = tempfile.TemporaryFile()
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    stream.seek(0)
    return stream  # type: ignore[return-value]


def member(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info


def directory(name: str) -> tuple[tarfile.TarInfo, None]:
    return member(name, tarfile.DIRTYPE, mode=0o755), None


def unpack(place: Place, stream: io.BufferedRandom) -> None:
    binary_cache.unpack(PYTHON, stream, place.software, place.cache, place.user)


def everything(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_the_key_names_the_platform() -> None:
    release = binary_cache.parse_os_release('ID=debian\nVERSION_ID="12"\n# comment\nPRETTY_NAME="Debian"\n')
    assert (release["ID"], release["VERSION_ID"]) == ("debian", "12")
    one = binary_cache.platform_id("debian", "12", "x86_64", "abc", Path("/opt/slapgrid"), Path("/opt/slapgrid/.cache"))
    assert one.startswith("debian-12-x86_64-") and len(one.rsplit("-", 1)[1]) == 12
    assert one != binary_cache.platform_id("debian", "12", "x86_64", "abd", Path("/opt/slapgrid"),
                                           Path("/opt/slapgrid/.cache"))
    assert one != binary_cache.platform_id("debian", "12", "x86_64", "abc", Path("/srv/sr"),
                                           Path("/opt/slapgrid/.cache"))
    assert binary_cache.platform_id("Ubuntu Linux", "24.04/x", "aarch64", "k", Path("/a"), Path("/b")).startswith(
        "ubuntu-linux-24.04-x-aarch64-")


def test_a_release_and_its_store_entries_go_round_trip(place: Place) -> None:
    built = place.owned(place.root / "software" / "built")
    entry = place.owned(place.cache / "pip" / "k1")
    (entry / "lib.py").write_text("x = 1\n")
    (built / "bin").mkdir()
    (built / "bin" / "run").write_text("#!/bin/sh\n")
    (built / "bin" / "run").chmod(0o755)
    (built / "current").symlink_to("bin")
    (built / ".completed").write_text("built\n")
    (built / ".build.log").write_text("log\n")
    (built / ".partita-stores").write_text(f"{entry}\n")
    if place.user.switches:
        for path in [built, *built.rglob("*"), entry, *entry.rglob("*")]:
            os.lchown(path, place.user.uid, place.user.gid)  # type: ignore[arg-type]
    with tempfile.TemporaryFile() as packed:
        binary_cache.pack(PYTHON, built, place.cache, place.user, packed)
        packed.seek(0)
        shutil.rmtree(entry)  # a node that has none of the store entries
        unpack(place, packed)
    assert everything(place.software) == [".partita-stores", "bin", "bin/run", "current"]
    assert os.readlink(place.software / "current") == "bin" and os.access(place.software / "bin" / "run", os.X_OK)
    assert (place.cache / "pip" / "k1" / "lib.py").read_text() == "x = 1\n"
    assert everything(place.cache) == ["pip", "pip/k1", "pip/k1/lib.py"]  # no staging left
    if place.user.switches:
        assert (place.software / "bin" / "run").stat().st_uid == place.user.uid


HOSTILE = {
    "dot-dot": [directory("software"), (member("software/../outside/evil"), b"x")],
    "absolute": [directory("software"), (member("/tmp/evil-abs"), b"x")],
    "another tree": [directory("software"), (member("etc/passwd"), b"x")],
    "link out": [directory("software"), (member("software/l", tarfile.SYMTYPE, link="../../outside"), None),
                 (member("software/l/evil"), b"x")],
    "absolute link": [directory("software"), (member("software/l", tarfile.SYMTYPE, link="/etc"), None)],
    "link out through a link": [
        directory("software"), directory("software/d"),
        (member("software/d/up", tarfile.SYMTYPE, link=".."), None),  # inside: software itself
        (member("software/d/up/esc", tarfile.SYMTYPE, link="../../outside"), None)],  # lexically inside, really out
    "device": [directory("software"), (member("software/null", tarfile.CHRTYPE, mode=0o666), None)],
    "fifo": [directory("software"), (member("software/fifo", tarfile.FIFOTYPE), None)],
    "hard link out": [directory("software"), (member("software/h", tarfile.LNKTYPE, link="../outside/x"), None)],
    "hard link to a store": [directory("software"), directory("cache/pip/k"), (member("cache/pip/k/f"), b"x"),
                             (member("software/h", tarfile.LNKTYPE, link="cache/pip/k/f"), None)],
    "written through its own link": [
        directory("software"), (member("software/a", tarfile.SYMTYPE, link="b"), None),
        (member("software/a"), b"overwrite")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_and_writes_nothing(place: Place, case: str) -> None:
    (place.outside / "x").write_text("mine")
    with archive(*HOSTILE[case]) as stream, pytest.raises(BinaryCacheError, match="refused"):
        unpack(place, stream)
    assert everything(place.software) == [] and everything(place.cache) == []
    assert everything(place.outside) == ["x"] and not Path("/tmp/evil-abs").exists()


def test_setuid_and_writable_bits_are_dropped(place: Place) -> None:
    members = [directory("software"), (member("software/suid", mode=0o4777), b"#!/bin/sh\n"),
               (member("software/sgid", mode=0o2755), b"x"), (member("software/d", tarfile.DIRTYPE, mode=0o1777), None)]
    with archive(*members) as stream:
        unpack(place, stream)
    assert stat.S_IMODE((place.software / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((place.software / "sgid").stat().st_mode) == 0o755
    assert stat.S_IMODE((place.software / "d").stat().st_mode) == 0o755


def test_an_existing_store_entry_is_kept(place: Place) -> None:
    kept = place.owned(place.cache / "pip" / "k")
    (kept / "f").write_text("already here")
    with archive(directory("software"), (member("software/instance.cfg"), b"[buildout]\n"),
                 directory("cache/pip/k"), (member("cache/pip/k/f"), b"from the archive")) as stream:
        unpack(place, stream)
    assert (kept / "f").read_text() == "already here"
    assert everything(place.cache) == ["pip", "pip/k", "pip/k/f"]


def test_the_build_user_cannot_pack_a_root_only_file(place: Place) -> None:
    """A link (or, as root, a hard link) the build user plants to a file only root reads never puts
    that file's content in the archive."""
    secret = place.root / "secret"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    built = place.owned(place.root / "software" / "built")
    (built / "instance.cfg").write_text("[buildout]\n")
    (built / "leak").symlink_to(secret)
    with tempfile.TemporaryFile() as packed:
        with pytest.raises(BinaryCacheError, match="points out of"):
            binary_cache.pack(PYTHON, built, place.cache, place.user, packed)
        packed.seek(0)
        assert SECRET not in packed.read()
    if not place.user.switches:
        return
    (built / "leak").unlink()
    os.link(secret, built / "leak")  # root can hard-link it in; the software user still cannot read it
    with tempfile.TemporaryFile() as packed:
        with pytest.raises(BinaryCacheError):
            binary_cache.pack(PYTHON, built, place.cache, place.user, packed)
        packed.seek(0)
        assert SECRET not in packed.read()


def test_a_store_entry_out_of_the_cache_is_not_packed(place: Place) -> None:
    built = place.owned(place.root / "software" / "built")
    (built / ".partita-stores").write_text(f"{place.outside}/pip/k\n")
    with tempfile.TemporaryFile() as packed, pytest.raises(BinaryCacheError, match="not cacheable"):
        binary_cache.pack(PYTHON, built, place.cache, place.user, packed)


def test_the_download_has_no_name_a_partition_user_could_open(tmp_path: Path) -> None:
    private = tmp_path / "locks"
    private.mkdir(mode=0o700)
    with binary_cache._private_file(private) as stream:
        stream.write(SECRET)
        stream.flush()
        assert list(private.iterdir()) == []  # unnamed: no path to open
        if os.geteuid() != 0:
            return
        pid = os.fork()  # another user tries the one way left: the node's /proc descriptor
        if pid == 0:
            try:
                os.setgid(65534)
                os.setuid(65534)
                open(f"/proc/{os.getppid()}/fd/{stream.fileno()}", "rb").read()
            except PermissionError:
                os._exit(0)
            except BaseException:
                os._exit(2)
            os._exit(1)
        assert os.waitpid(pid, 0)[1] == 0
