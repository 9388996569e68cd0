"""Build and remove software releases (`slapos node software`).

A release is built by zc.buildout from the toolchain into ``software_root/<md5(url)>``, as the
owner of ``software_root``, with a clean environment and the node's ``software_timeout``. Every
build of the node shares one egg, download and extends cache (``cache_directory``). One build per
URL at a time (a lock per URL); the completion marker ``.completed`` is written last, atomically,
and removed before a rebuild, so a build that failed or was killed never looks complete.

In root mode ``software_root`` is root's and the build user owns only ``software_root/<digest>``
and the cache, so it can neither rename nor replace the toolchain or the node's ``.locks``
(`node.software_root`, checked at every start).

Before running buildout the node asks the master's binary cache for the release built on this
platform, and unpacks it as the build user instead (the log says "from the binary cache
(<platform>)"); after a build, a node its master marks as a builder uploads it (`node.binary_cache`,
``[slapos] binary_cache``). Any failure there is one log line and a normal build.

Before each build the toolchain that runs it is added to the release's record
(``software_root/.locks/<digest>.toolchains``): the software's scripts name its Python. After a
build or a removal, toolchains no release records any more are removed (`node.toolchain`).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from partita.node import binary_cache, progress
from partita.node.context import NodeContext
from partita.node.desired import release_digest
from partita.node.errors import CommandFailed, NodeError
from partita.node.files import node_directory, owned_directory, remove_file, write_file
from partita.node.locks import try_lock
from partita.node.package_index import pip_environment
from partita.node.plan import backoff
from partita.node.reason import clip, status_reason
from partita.node.runner import check, clean_environment, run
from partita.node.toolchain import RECORD_SUFFIX, record_use, recorded_toolchains, remove_unused
from partita.slap.errors import ClientError
from partita.slap.fileio import atomic_write
from partita.slap.wire.node_state import SoftwareInstallation

log = logging.getLogger(__name__)

COMPLETED = ".completed"
BUILD_LOG = ".build.log"
RETRY_FIRST = 60.0
RETRY_MAX = 3600.0


def is_completed(path: Path) -> bool:
    return (path / COMPLETED).is_file()


def release_base(url: str) -> str:
    """The directory (or URL prefix) an SR's own files are found in: the URL minus its last part."""
    if url.startswith("file://"):
        url = url[len("file://"):]
    return url.rsplit("/", 1)[0] if "/" in url else "."


def software_profile(url: str, path: Path, cache: Path) -> str:
    """The buildout.cfg the node writes into the software directory."""
    return (
        "[buildout]\n"
        f"extends = {url}\n"
        f"directory = {path}\n"
        f"eggs-directory = {cache / 'eggs'}\n"
        f"download-cache = {cache / 'download'}\n"
        f"extends-cache = {cache / 'extends'}\n"
        "newest = false\n"
        "\n[software-release]\n"
        f"url = {url}\n"
        f"base = {release_base(url)}\n"
    )


def _prepare_cache(ctx: NodeContext) -> Path:
    cache = ctx.config.cache_root
    user = ctx.software_user()
    owner = (user.uid, user.gid) if user.switches else None
    for path in (cache, cache / "eggs", cache / "download", cache / "extends"):
        if path == cache and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)  # a configured cache_directory's parents
        owned_directory(path, owner=owner, mode=0o755)  # made by root in root's software_root, then the build user's
    return cache


def _locks(ctx: NodeContext) -> Path:
    """Where the per-release locks, pid files and failure counts live."""
    locks = ctx.config.software_root / ".locks"
    node_directory(locks, group=None, mode=0o700)  # the node's own (root's software_root: `node.software_root`)
    return locks


def build(ctx: NodeContext, want: SoftwareInstallation) -> bool:
    """Build `want` unless another process is building it; True when it is now complete."""
    url, digest = want.software_release_uri, release_digest(want.software_release_uri)
    path = ctx.software_path(digest)
    locks = _locks(ctx)
    with try_lock(locks / digest) as held:
        if not held:
            log.info("software %s: being built by another process", url)
            return False
        if is_completed(path):
            return True
        failures = _Failures(locks / f"{digest}.failed")
        if failures.waiting():
            failures.report_again(ctx, url)
            return False
        progress.step("building %s", url)
        _report(ctx, url, "building")
        _record_toolchain(ctx, digest)
        platform = _from_binary_cache(ctx, url, digest, path)
        if platform is None:
            try:
                _run_buildout(ctx, url, path)
            except CommandFailed as error:
                log.error("software %s: %s; the end of its output:\n%s", url, error, error.tail)
                reason = status_reason(str(error), error.tail, path / BUILD_LOG)
                progress.failed("building %s failed: %s", url, reason)
                failures.record(reason, reported=_report(ctx, url, "error", reason))
                return False
        failures.clear()
        _mark_completed(path)
        if platform is not None:
            log.info("software %s: from the binary cache (%s) in %s", url, platform, path)
            progress.step("%s from the binary cache (%s)", url, platform)
        else:
            log.info("software %s: built in %s", url, path)
            progress.step("built %s", url)
            _to_binary_cache(ctx, url, digest, path)
        _report(ctx, url, "available")  # if the master cannot take it, the next pass says it again
    forget_unused_toolchains(ctx)
    return True


def _from_binary_cache(ctx: NodeContext, url: str, digest: str, path: Path) -> str | None:
    """Deploy `url` from the master's binary cache into a new, empty `path` (`node.binary_cache`);
    its platform, or None when the node must build it."""
    if not ctx.config.binary_cache or (path.exists() and any(path.iterdir())):
        return None  # a directory a build already used is built again in place
    user = ctx.software_user()
    try:
        cache = _prepare_cache(ctx)
        owned_directory(path, owner=(user.uid, user.gid) if user.switches else None, mode=0o755)
    except NodeError as error:
        log.warning("software %s: not from the binary cache: %s", url, error)
        return None
    return binary_cache.fetch(ctx, url, digest, path, cache, _locks(ctx))


def _to_binary_cache(ctx: NodeContext, url: str, digest: str, path: Path) -> None:
    """On a builder, upload what the node just built (`node.binary_cache`)."""
    if ctx.config.binary_cache and binary_cache.offer(ctx, url, digest, path, ctx.config.cache_root, _locks(ctx)):
        progress.step("%s uploaded to the binary cache", url)


def _run_buildout(ctx: NodeContext, url: str, path: Path) -> None:
    user = ctx.software_user()
    owner = (user.uid, user.gid) if user.switches else None
    try:
        cache = _prepare_cache(ctx)
        owned_directory(path, owner=owner, mode=0o755)
        remove_file(path, COMPLETED)
        profile = path / "buildout.cfg"
        write_file(path, profile.name, software_profile(url, path, cache), mode=0o644, owner=owner)
        remove_file(path, BUILD_LOG)
        env = clean_environment(path, user, pip_environment(ctx.config))
    except NodeError as error:
        raise CommandFailed(str(error), "") from None
    log_path = path / BUILD_LOG
    log.info("software %s: building in %s (log: %s)", url, path, log_path)
    outcome = run(
        [str(ctx.toolchain.buildout), "-N", "-c", str(profile)],
        cwd=path, env=env, timeout=ctx.config.software_timeout,
        run_as=user, log_path=log_path, umask=0o022,
        on_line=lambda line: log.info("software %s | %s", path.name, line),
        pid_file=_locks(ctx) / f"{path.name}.pid",
    )
    check(outcome, "the software buildout")
    if not (path / "instance.cfg").is_file() and not (path / "template.cfg").is_file():
        raise CommandFailed("the software buildout made no instance.cfg", outcome.tail)


class _Failures:
    """Consecutive failed builds of one release, so that a broken one is retried with back-off."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
            return {"attempts": int(data["attempts"]), "at": float(data["at"]),
                    "reason": str(data.get("reason", "")), "reported": bool(data.get("reported", True))}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {"attempts": 0, "at": 0.0, "reason": "", "reported": True}

    def waiting(self) -> bool:
        data = self._read()
        attempts = data["attempts"]
        return attempts > 0 and time.time() < data["at"] + backoff(attempts, RETRY_FIRST, RETRY_MAX)

    def record(self, reason: str, *, reported: bool) -> None:
        data = self._read()
        self._write({"attempts": data["attempts"] + 1, "at": time.time(), "reason": reason, "reported": reported})

    def report_again(self, ctx: NodeContext, url: str) -> None:
        """While waiting to retry: send the error the master could not take last time (507, 503,
        unreachable), so that it is not lost until the next build."""
        data = self._read()
        if not data["reported"] and data["reason"] and _report(ctx, url, "error", data["reason"]):
            self._write({**data, "reported": True})

    def _write(self, data: dict) -> None:
        atomic_write(self.path, json.dumps(data), mode=0o600)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _mark_completed(path: Path) -> None:
    atomic_write(path / COMPLETED, "built\n", mode=0o644)


def remove(ctx: NodeContext, want: SoftwareInstallation) -> None:
    """Delete a software release the master wants destroyed, then say so."""
    url, digest = want.software_release_uri, release_digest(want.software_release_uri)
    path = ctx.software_path(digest)
    with try_lock(_locks(ctx) / digest) as held:
        if not held:
            return
        (path / COMPLETED).unlink(missing_ok=True)  # first: a half-removed tree never looks built
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            (_locks(ctx) / f"{digest}{RECORD_SUFFIX}").unlink(missing_ok=True)
    log.info("software %s: removed", url)
    progress.step("removed %s", url)
    _report(ctx, url, "destroyed")
    forget_unused_toolchains(ctx)


def _record_toolchain(ctx: NodeContext, digest: str) -> None:
    try:
        record_use(_locks(ctx), digest, ctx.toolchain)
    except OSError as error:  # without a record, every toolchain is kept: safe
        log.warning("software %s: cannot record its toolchain: %s", digest, error.strerror or error)


def forget_unused_toolchains(ctx: NodeContext) -> None:
    """Remove the toolchains that neither this process nor any software release of the node uses."""
    config = ctx.config
    try:
        in_use = recorded_toolchains(config.software_root, _locks(ctx), ignore=[config.toolchain_root])
    except OSError as error:
        log.warning("cannot read which toolchains the software releases use: %s", error.strerror or error)
        return
    if in_use is not None:
        remove_unused(config.toolchain_root, {ctx.toolchain.directory, *in_use})


def report_available(ctx: NodeContext, want: SoftwareInstallation) -> None:
    _report(ctx, want.software_release_uri, "available")


def report_destroyed(ctx: NodeContext, want: SoftwareInstallation) -> None:
    _report(ctx, want.software_release_uri, "destroyed")


def _report(ctx: NodeContext, url: str, state: str, error_log: str | None = None) -> bool:
    """Tell the master (the reason on one short line); False (logged) when it could not take it."""
    try:
        ctx.client.report_software_installation_state(ctx.config.computer_id, url, state,
                                                      clip(error_log) if error_log else error_log)
    except ClientError as error:
        log.warning("software %s: cannot report %s to the master: %s", url, state, error)
        return False
    return True
