"""`slapos node prune` (issue 12): the decision on plain data, the stores of a directory tree, and a
real root node whose two releases share a pip entry, with the build user planting links."""
from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from partita.node.prune import Entry, Release, prune, references_of, unknown, unused, uses_stores
from tests.recipes.test_pip import make_wheel
from tests.support.node import COMPUTER, NodeEnv

KEY_A, KEY_B, KEY_C = "a" * 32, "b" * 32, "c" * 32


# -- the decision ---------------------------------------------------------------------------------

def test_an_entry_no_release_names_is_removed_and_a_named_one_kept() -> None:
    entries = [Entry("pip", KEY_A), Entry("pip", KEY_B), Entry("cmmi", KEY_C)]
    releases = [Release("r1", frozenset({KEY_A})), Release("r2", frozenset())]
    assert unused(entries, releases) == [Entry("cmmi", KEY_C), Entry("pip", KEY_B)]
    assert unused(entries, []) == sorted(entries, key=lambda entry: (entry.store, entry.name))


def test_one_release_of_unknown_use_keeps_everything() -> None:
    releases = [Release("r1", frozenset()), Release("old", None)]
    assert unused([Entry("pip", KEY_A)], releases) == []
    assert unknown(releases) == ["old"]


def test_names_that_are_not_keys_are_left_alone() -> None:
    names = [".tmp-x1", f".{KEY_A}.lock", "A" * 32, KEY_A + "0", "z" * 32, f".trash-{KEY_A}-1234"]
    assert unused([Entry("pip", name) for name in names], []) == []


def test_a_record_names_entries_by_their_last_part_and_old_releases_are_recognised() -> None:
    assert references_of(f"/c/pip/{KEY_A}\n\n/elsewhere/cmmi/{KEY_B}/\n") == {KEY_A, KEY_B}
    assert uses_stores("[wheels]\nrecipe = partita:pip\n") and uses_stores("[x]\nrecipe = partita:cmmi\n")
    assert not uses_stores("[x]\nrecipe = partita:template\n")


# -- a tree on disk -------------------------------------------------------------------------------

def node_tree(tmp_path: Path) -> SimpleNamespace:
    config = SimpleNamespace(software_root=tmp_path / "soft", cache_root=tmp_path / "soft" / ".cache")
    for store in ("pip", "cmmi"):
        (config.cache_root / store).mkdir(parents=True)
    return config


def entry(config: SimpleNamespace, store: str, key: str, size: int = 1000) -> Path:
    path = config.cache_root / store / key
    (path / "lib").mkdir(parents=True)
    (path / "lib" / "data").write_bytes(b"x" * size)
    return path


def release(config: SimpleNamespace, name: str, *entries: Path, record: bool = True) -> Path:
    path = config.software_root / name
    path.mkdir(parents=True)
    if record:
        (path / ".partita-stores").write_text("".join(f"{entry}\n" for entry in entries))
    return path


def test_prune_removes_the_unused_entries_and_dry_run_only_says(tmp_path: Path) -> None:
    config = node_tree(tmp_path)
    used, unused_pip = entry(config, "pip", KEY_A), entry(config, "pip", KEY_B)
    unused_cmmi = entry(config, "cmmi", KEY_C)
    release(config, "1" * 32, used)
    release(config, "2" * 32)  # a release using no store
    (config.cache_root / "pip" / ".tmp-build").mkdir()  # a build's temporary directory

    dry = prune(config, dry_run=True)
    assert [str(item.entry) for item in dry.removed] == [f"pip/{KEY_B}", f"cmmi/{KEY_C}"]
    assert all(item.size >= 1000 for item in dry.removed)
    assert unused_pip.is_dir() and unused_cmmi.is_dir()

    done = prune(config)
    assert [str(item.entry) for item in done.removed] == [f"pip/{KEY_B}", f"cmmi/{KEY_C}"]
    assert done.total == dry.total
    assert used.is_dir() and not unused_pip.exists() and not unused_cmmi.exists()
    assert sorted(p.name for p in (config.cache_root / "pip").iterdir()) == [
        f".{KEY_B}.lock", ".tmp-build", KEY_A]  # no .trash-* left
    assert prune(config).removed == []


def test_a_release_built_before_the_records_keeps_every_entry(tmp_path: Path) -> None:
    config = node_tree(tmp_path)
    kept = entry(config, "pip", KEY_A)
    old = release(config, "1" * 32, record=False)
    (old / ".installed.cfg").write_text("[buildout]\nparts = wheels\n\n[wheels]\nrecipe = partita:pip\n")
    outcome = prune(config)
    assert outcome.removed == [] and outcome.unknown == ["1" * 32] and kept.is_dir()


def test_an_entry_a_build_holds_is_skipped(tmp_path: Path) -> None:
    config = node_tree(tmp_path)
    busy = entry(config, "cmmi", KEY_A)
    with open(config.cache_root / "cmmi" / f".{KEY_A}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        outcome = prune(config)
    assert outcome.removed == [] and outcome.busy == [Entry("cmmi", KEY_A)] and busy.is_dir()
    assert [item.entry for item in prune(config).removed] == [Entry("cmmi", KEY_A)]


def test_the_command_prints_each_entry_and_a_total(tmp_path: Path) -> None:
    config = node_tree(tmp_path)
    entry(config, "pip", KEY_A, size=2 * 1024 * 1024)
    cfg = tmp_path / "slapos.cfg"
    cfg.write_text(f"[slapos]\ncomputer_id = COMP-1\nmaster_url = http://127.0.0.1:9\n"
                   f"software_root = {config.software_root}\ninstance_root = {tmp_path / 'srv'}\n"
                   f"cache_directory = {config.cache_root}\n")
    slapos = str(Path(sys.executable).parent / "slapos")
    dry = subprocess.run([slapos, "node", "prune", "--dry-run", "--cfg", str(cfg)], capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1].startswith("would remove 1 store entry, 2.")
    done = subprocess.run([slapos, "node", "prune", "--cfg", str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"removed pip/{KEY_A} (2.")
    assert done.stdout.splitlines()[-1].startswith("removed 1 store entry, 2.")
    usage = subprocess.run([slapos, "node", "prune", "--bogus"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 64


# -- a real root node -----------------------------------------------------------------------------

RELEASE = """\
[buildout]
parts = pip-config wheels instance-profile

[pip-config]
recipe = partita:template
inline =
    [global]
    no-index = true
    find-links = {links}
output = ${{buildout:directory}}/.config/pip/pip.conf

[wheels]
recipe = partita:pip
packages = partita-demo==1.0
sha256-partita-demo = {sha}

[instance-profile]
recipe = partita:template
inline =
    [buildout]
    parts =
output = ${{buildout:directory}}/instance.cfg
"""


def as_build_user(function, *args) -> None:  # type: ignore[no-untyped-def]
    """Run `function` in a child process as ``slapsoft`` (the build user plants things)."""
    pid = os.fork()
    if pid == 0:
        try:
            user = pwd.getpwnam("slapsoft")
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            function(*args)
        except BaseException:
            os._exit(1)
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0


@pytest.mark.root
def test_a_real_node_prunes_what_no_release_uses_and_follows_no_link(request: pytest.FixtureRequest) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (it checks a root node against its build user)")
    cache = Path(tempfile.mkdtemp(prefix="ptcache", dir="/tmp"))  # its own: the shared test cache is not ours
    request.addfinalizer(lambda: shutil.rmtree(cache, ignore_errors=True))
    cache.chmod(0o755)
    env = NodeEnv(partitions=1, extra={"slapos": {"cache_directory": str(cache)}})
    request.addfinalizer(env.close)
    links = env.root / "links"
    sha = make_wheel(links)
    urls = []
    for name in ("first", "second"):
        directory = env.root / name
        directory.mkdir()
        (directory / "software.cfg").write_text(RELEASE.format(links=links, sha=sha))
        urls.append(str(directory / "software.cfg"))
    env.format()
    for url in urls:
        env.client.supply(COMPUTER, url)
    env.software()
    entries = {line.strip() for url in urls
               for line in (env.software_directory(url) / ".partita-stores").read_text().splitlines()}
    assert len(entries) == 1
    shared = Path(entries.pop())
    assert shared.parent == cache / "pip" and (shared / "partita_demo").is_dir()

    # the build user plants links: the pip store's entry names pointing at root's files
    victim = env.root / "victim"
    (victim / KEY_A).mkdir(parents=True)
    (victim / KEY_A / "precious").write_text("root's\n")
    stray = cache / "pip" / KEY_B  # an unused entry holding a link out of the store
    as_build_user(lambda: (stray.mkdir(), (stray / "out").symlink_to(victim / KEY_A),
                           (cache / "pip" / KEY_C).symlink_to(victim / KEY_A)))

    env.client.supply(COMPUTER, urls[0], state="destroyed")
    env.software()
    assert not env.software_directory(urls[0]).exists()
    first = env.slapos("node", "prune")
    assert f"removed pip/{KEY_B}" in first.stdout and shared.name not in first.stdout
    assert first.stdout.splitlines()[-1].startswith("removed 1 store entry")
    assert shared.is_dir() and (cache / "pip" / KEY_C).is_symlink()
    assert (victim / KEY_A / "precious").read_text() == "root's\n"

    env.client.supply(COMPUTER, urls[1], state="destroyed")
    env.software()
    dry = env.slapos("node", "prune", "--dry-run")
    assert f"would remove pip/{shared.name}" in dry.stdout and shared.is_dir()
    done = env.slapos("node", "prune")
    assert f"removed pip/{shared.name}" in done.stdout and not shared.exists()

    # a store swapped for a link to a directory of key-shaped names: skipped, nothing there touched
    shutil.rmtree(cache / "cmmi", ignore_errors=True)
    as_build_user(lambda: (cache / "cmmi").symlink_to(victim))
    skipped = env.slapos("node", "prune")
    assert skipped.stdout.splitlines()[-1] == "removed 0 store entries, 0.0 MiB"
    assert (victim / KEY_A / "precious").read_text() == "root's\n"
    (cache / "cmmi").unlink()
