"""The node's side of the master's binary cache (`master.services.binary_cache`): deploy a release
from what a builder built, and, on a builder, upload what this node built.

**The key** of a release on this node is ``<md5 of the URL>-<platform>`` (`cache_key`), the
platform (`platform_id`) naming what built files depend on: the OS (``/etc/os-release`` ``ID`` and
``VERSION_ID``), the machine, the toolchain's directory (scripts name its Python; its name is its key), and the absolute
``software_root`` and cache directory (scripts and store entries embed them). Shown readable:
``debian-12-x86_64-<12 hex of a digest of all of it>``.

**The archive** is a tar of ``software/…`` (the software directory without ``.completed`` and
``.build.log``) and ``cache/<kind>/<entry>/…`` (each shared store entry ``.partita-stores`` lists,
`recipes.pip`: they live outside the software directory). A release whose store entries are
elsewhere, or whose tree holds a link out of itself, a device or a FIFO, is not cached.

**Who touches what.** Root never opens a path the build user controls:

- packing runs as the software user (`PACK`, the toolchain's Python): it walks its own directory
  and writes the tar to a descriptor of an unnamed root-owned file. A link the user planted to
  ``/etc/shadow`` is archived as a link (never followed), and the process could not read the file
  anyway;
- the download goes to an unnamed file (``O_TMPFILE``) in root's ``software_root/.locks`` (0700):
  no partition user can open it; its sha256 is checked before anything is unpacked;
- unpacking runs as the software user (`UNPACK`, reading the archive from that descriptor): every
  member is checked before it is written (no absolute name, no ``..``, only ``software/`` and
  ``cache/<kind>/<entry>/``; no device or FIFO; a link must stay, resolved on disk, inside its own
  tree; nothing is written over or through an existing path; setuid, setgid, sticky and
  group/other write bits are dropped), into a temporary directory of the same file system, then
  renamed into place: the software's files into the empty software directory, each store entry to
  its name unless one is already there (the existing one is kept, as `recipes.pip` does).

Any failure (not cached, unreachable master, digest mismatch, refused member) is one log line and
the node builds as usual. Only a computer an admin marked as a builder uploads (`offer` asks the
master first); the master refuses the others anyway (``NOT_A_BUILDER``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform as platform_module
import re
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from partita.node.context import NodeContext
from partita.node.errors import NodeError
from partita.node.runner import RunAs, clean_environment
from partita.slap.errors import ClientError, RemoteError

log = logging.getLogger(__name__)

OS_RELEASE = Path("/etc/os-release")
CHUNK = 4 * 1024 * 1024  # the master's CHUNK_MAX
TIMEOUT = 900.0
_LABEL = re.compile(r"[^a-z0-9._+-]+")


class BinaryCacheError(NodeError):
    """The binary cache could not be used for this release (the node builds it instead)."""


# -- the key (pure) ------------------------------------------------------------------------------

def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines of ``/etc/os-release`` (quotes removed)."""
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            values[name] = value.strip().strip("\"'")
    return values


def _label(text: str) -> str:
    return _LABEL.sub("-", text.lower()).strip("-") or "unknown"


def platform_id(os_id: str, version_id: str, machine: str, toolchain: str, software_root: Path,
                cache_root: Path) -> str:
    """``<os>-<version>-<machine>-<12 hex>``: what a built release on this node depends on
    (`toolchain`: the toolchain's directory, whose name is its key)."""
    document = json.dumps([os_id, version_id, machine, toolchain, str(software_root), str(cache_root)])
    digest = hashlib.sha256(document.encode()).hexdigest()[:12]
    return f"{_label(os_id)}-{_label(version_id)}-{_label(machine)}-{digest}"


def cache_key(digest: str, platform: str) -> str:
    return f"{digest}-{platform}"


def node_platform(ctx: NodeContext) -> str:
    try:
        release = parse_os_release(OS_RELEASE.read_text())
    except OSError:
        release = {}
    return platform_id(release.get("ID", "linux"), release.get("VERSION_ID", ""), platform_module.machine(),
                       str(ctx.toolchain.directory), ctx.config.software_root, ctx.config.cache_root)


# -- the scripts the software user runs ----------------------------------------------------------

PACK = r'''
import os, sys, tarfile
software, cache = (os.path.abspath(p) for p in sys.argv[1:3])
SKIP = {".completed", ".build.log"}

def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(3)

def inside(path, root):
    return path == root or path.startswith(root + os.sep)

def add_tree(tar, root, prefix):
    for directory, dirs, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        base = prefix if relative == "." else prefix + "/" + relative
        if relative != ".":
            tar.add(directory, base, recursive=False)
        for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(directory, d))):
            if directory == root and root == software and name in SKIP:
                continue
            path = os.path.join(directory, name)
            if os.path.islink(path):
                target = os.readlink(path)
                if os.path.isabs(target) or not inside(os.path.normpath(os.path.join(directory, target)), root):
                    fail("not cacheable: the link %s points out of %s" % (path, root))
            elif not os.path.isfile(path):
                fail("not cacheable: %s is not a regular file, a directory or a link" % path)
            tar.add(path, base + "/" + name, recursive=False)
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(directory, d)))

entries = []
references = os.path.join(software, ".partita-stores")
if os.path.isfile(references) and not os.path.islink(references):
    for line in open(references).read().splitlines():
        entry = os.path.normpath(line.strip())
        if not line.strip() or inside(entry, software):
            continue
        relative = os.path.relpath(entry, cache)
        if not inside(entry, cache) or len(relative.split(os.sep)) != 2 or os.path.islink(entry):
            fail("not cacheable: the store entry %s is not a directory of %s" % (entry, cache))
        entries.append((entry, relative))
with tarfile.open(fileobj=os.fdopen(1, "wb"), mode="w|", format=tarfile.PAX_FORMAT) as tar:
    tar.add(software, "software", recursive=False)
    add_tree(tar, software, "software")
    for entry, relative in entries:
        tar.add(entry, "cache/" + relative.replace(os.sep, "/"), recursive=False)
        add_tree(tar, entry, "cache/" + relative.replace(os.sep, "/"))
'''

UNPACK = r'''
import os, shutil, sys, tarfile, tempfile
software, cache = (os.path.abspath(p) for p in sys.argv[1:3])

def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(2)

def inside(path, root):
    return path == root or path.startswith(root + os.sep)

def tree(name):
    """software, or cache/<kind>/<entry>: the tree a member belongs to."""
    parts = name.split("/")
    if parts[0] == "software":
        return "software"
    if parts[0] == "cache" and len(parts) >= 3:
        return "/".join(parts[:3])
    return None

if os.geteuid() == 0:
    fail("refusing to unpack as root")
if os.listdir(software):
    fail("the software directory %s is not empty" % software)
os.makedirs(cache, exist_ok=True)
stages = {"software": tempfile.mkdtemp(prefix=".unpack-", dir=software),
          "cache": tempfile.mkdtemp(prefix=".binary-cache-", dir=cache)}
try:
    with tarfile.open(fileobj=os.fdopen(0, "rb"), mode="r:") as archive:
        for member in archive:
            name = member.name.rstrip("/")
            parts = name.split("/")
            if name.startswith("/") or "" in parts or "." in parts or ".." in parts:
                fail("refused member %r: not a plain relative name" % member.name)
            top = tree(name)
            if top is None:
                if name == "cache" or (parts[0] == "cache" and len(parts) == 2 and member.isdir()):
                    continue
                fail("refused member %r: outside software/ and cache/<kind>/<entry>/" % member.name)
            if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
                fail("refused member %r: a device, FIFO or other special file" % member.name)
            stage = stages[parts[0]]
            root = os.path.join(stage, top)
            target = os.path.join(stage, name)
            parent = os.path.realpath(os.path.dirname(target))
            if name != top and not inside(parent, os.path.realpath(root)):
                fail("refused member %r: it would be written out of its tree" % member.name)
            if os.path.lexists(target) and not (member.isdir() and os.path.isdir(target)
                                                and not os.path.islink(target)):
                fail("refused member %r: it is in the archive twice" % member.name)
            if member.issym():
                if os.path.isabs(member.linkname) or not inside(
                        os.path.normpath(os.path.join(parent, member.linkname)), os.path.realpath(root)):
                    fail("refused member %r: a link out of its tree (%s)" % (member.name, member.linkname))
            if member.islnk():
                source = os.path.join(stage, member.linkname)
                if (tree(member.linkname) != top or os.path.islink(source) or not os.path.isfile(source)
                        or not inside(os.path.realpath(source), os.path.realpath(root))):
                    fail("refused member %r: a hard link to %r" % (member.name, member.linkname))
            member.mode &= 0o755
            if member.isdir():
                member.mode |= 0o700
            member.uname = member.gname = ""
            archive.extract(member, stage, set_attrs=not member.issym())
    for name in os.listdir(os.path.join(stages["software"], "software")):
        os.rename(os.path.join(stages["software"], "software", name), os.path.join(software, name))
    staged = os.path.join(stages["cache"], "cache")
    for kind in sorted(os.listdir(staged)) if os.path.isdir(staged) else ():
        os.makedirs(os.path.join(cache, kind), mode=0o755, exist_ok=True)
        for entry in sorted(os.listdir(os.path.join(staged, kind))):
            if not os.path.lexists(os.path.join(cache, kind, entry)):
                try:
                    os.rename(os.path.join(staged, kind, entry), os.path.join(cache, kind, entry))
                except OSError:
                    if not os.path.isdir(os.path.join(cache, kind, entry)):
                        raise
except (tarfile.TarError, OSError, ValueError) as error:
    fail("cannot unpack: %s" % error)
finally:
    for stage in stages.values():
        shutil.rmtree(stage, ignore_errors=True)
'''


def _run_script(python: Path, script: str, arguments: list[str], run_as: RunAs, *, stdin: BinaryIO | int,
                stdout: BinaryIO | int, timeout: float = TIMEOUT) -> None:
    """Run `script` with `python` as `run_as`, with its own session and a deadline; BinaryCacheError
    with its error output's last line when it fails."""
    switch = run_as.switches
    home = Path(arguments[0])
    try:
        process = subprocess.Popen(
            [str(python), "-I", "-c", script, *arguments], cwd="/", env=clean_environment(home, run_as),
            stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, close_fds=True, start_new_session=True,
            umask=0o022, user=run_as.uid if switch else None, group=run_as.gid if switch else None,
            extra_groups=list(run_as.groups) if switch else None)
    except OSError as error:
        raise BinaryCacheError(f"cannot run {python}: {error.strerror or error}") from None
    try:
        _, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()
        raise BinaryCacheError(f"stopped after {timeout:g} s") from None
    if process.returncode != 0:
        lines = errors.decode("utf-8", "replace").strip().splitlines()
        raise BinaryCacheError(lines[-1] if lines else f"exit status {process.returncode}")


def pack(python: Path, software: Path, cache: Path, run_as: RunAs, output: BinaryIO) -> None:
    """Write the archive of `software` and its store entries to `output`, as `run_as`."""
    _run_script(python, PACK, [str(software), str(cache)], run_as, stdin=subprocess.DEVNULL, stdout=output)


def unpack(python: Path, archive: BinaryIO, software: Path, cache: Path, run_as: RunAs) -> None:
    """Unpack `archive` (a file at its start) into the empty `software` and the store `cache`, as
    `run_as`; BinaryCacheError (and nothing written) when a member is refused."""
    _run_script(python, UNPACK, [str(software), str(cache)], run_as, stdin=archive, stdout=subprocess.DEVNULL)


# -- with the master ----------------------------------------------------------------------------

def _private_file(directory: Path) -> BinaryIO:
    """An unnamed file (no path any other user could open) in root's `directory`."""
    return tempfile.TemporaryFile(dir=directory)


def _sha256(stream: BinaryIO) -> tuple[int, str]:
    stream.seek(0)
    digest, size = hashlib.sha256(), 0
    while block := stream.read(1024 * 1024):
        digest.update(block)
        size += len(block)
    stream.seek(0)
    return size, digest.hexdigest()


def fetch(ctx: NodeContext, url: str, digest: str, software: Path, cache: Path, private: Path) -> str | None:
    """Deploy `url` into the empty `software` from the binary cache; its platform, or None (logged)
    when the node must build it."""
    key = cache_key(digest, node_platform(ctx))
    try:
        entry = ctx.client.get_binary_cache_entry(key)
    except RemoteError as error:
        if error.code != "NOT_CACHED":
            log.info("software %s: no binary cache (%s)", url, error)
        return None
    except ClientError as error:
        log.info("software %s: no binary cache (%s)", url, error)
        return None
    try:
        with _private_file(private) as archive:
            _download(ctx, key, int(entry["size"]), str(entry["sha256"]), archive)
            unpack(ctx.toolchain.python, archive, software, cache, ctx.software_user())
    except (BinaryCacheError, ClientError, OSError, KeyError, ValueError) as error:
        log.warning("software %s: not from the binary cache (%s): building it", url, error)
        return None
    return str(entry.get("platform") or key.split("-", 1)[1])


def _download(ctx: NodeContext, key: str, size: int, sha256: str, archive: BinaryIO) -> None:
    digest, offset = hashlib.sha256(), 0
    while offset < size:
        data = ctx.client.get_binary_cache_chunk(key, offset, min(CHUNK, size - offset))
        if not data:
            raise BinaryCacheError(f"the master sent nothing at offset {offset} of {size}")
        archive.write(data)
        digest.update(data)
        offset += len(data)
    if offset != size or digest.hexdigest() != sha256:
        raise BinaryCacheError(f"the download of {key} does not match its sha256 {sha256}")
    archive.flush()
    archive.seek(0)


def is_builder(ctx: NodeContext) -> bool:
    """Whether the master says this computer fills the binary cache (False when it cannot say)."""
    try:
        return bool(ctx.client.get_compute_node(ctx.config.computer_id).get("builder"))
    except (ClientError, AttributeError) as error:
        log.debug("cannot ask whether this computer is a builder: %s", error)
        return False


def offer(ctx: NodeContext, url: str, digest: str, software: Path, cache: Path, private: Path) -> bool:
    """On a builder: pack `software` as the software user and upload it; True when the master now
    holds it from this node."""
    if not is_builder(ctx):
        return False
    platform = node_platform(ctx)
    key = cache_key(digest, platform)
    try:
        ctx.client.get_binary_cache_entry(key)
        log.info("software %s: already in the binary cache", url)
        return False
    except ClientError:
        pass  # not cached (or the master cannot say): the upload tells
    try:
        with _private_file(private) as archive:
            pack(ctx.toolchain.python, software, cache, ctx.software_user(), archive)
            size, sha256 = _sha256(archive)
            ctx.client.begin_binary_cache_upload(key, url, platform, size, sha256)
            offset = 0
            while block := archive.read(CHUNK):
                ctx.client.put_binary_cache_chunk(key, offset, block)
                offset += len(block)
            ctx.client.commit_binary_cache_upload(key)
    except RemoteError as error:
        if error.code == "ALREADY_CACHED":
            log.info("software %s: already in the binary cache", url)
        else:
            log.warning("software %s: not uploaded to the binary cache: %s", url, error)
        return False
    except (BinaryCacheError, ClientError, OSError) as error:
        log.warning("software %s: not uploaded to the binary cache: %s", url, error)
        return False
    log.info("software %s: uploaded to the binary cache (%s, %d bytes)", url, platform, size)
    return True
