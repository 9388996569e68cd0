"""Run a guide's shell blocks (`tests.docs.guide`) the way a reader would, in a fresh directory.

- **Where.** A fresh directory ``/tmp/pgXXXX`` (short: supervisord's socket lives under it) holds
  ``home/`` (``$HOME``) and ``home/partita/``: a copy of the repository's tracked files as they are
  in the working tree (``git ls-files``), the working directory of the first block. So "in the
  repository" (``scripts/demo``, ``$PWD/software-releases/…``) means that copy, and nothing a guide
  does touches the checkout. The project's ``.venv/bin`` is first on ``PATH`` (the guide's install
  step is what made it).
- **How.** Every block is a real ``bash`` script with ``set -euo pipefail`` and a timeout. Blocks
  share what a terminal would: the shell variables a block sets and its working directory are
  carried to the next block. A ``background`` block runs in a process group of its own; the runner
  waits for its first line of output (or fails if it exits first) and stops it at the end (SIGINT,
  as Ctrl-C, then SIGTERM, then SIGKILL).
- **Who.** As the runner's `user` (through ``runuser``, with ``$HOME`` owned by them) or as root;
  ``as-user`` / ``as-root`` blocks override it. The user must be able to run the project's
  ``.venv`` (made from /usr/bin/python3.11 in a directory everyone can reach): checked first.
- **Substitutions.** ``(old, new)`` pairs applied to each block's text before it runs, for the
  guide's fixed ports and addresses that would collide with other runs on the machine (a free
  port instead of 8080, an address range of the test's own instead of 127.0.1.0/24). Each `old`
  must still be in the guide, or the run fails (the guide changed: update the test).
- **Setup.** A guide that is a reference, not a walkthrough, assumes a configured machine: the
  test may give `setup`, markdown whose blocks (annotations included) run first, named
  ``setup:LINE`` in failures.
- **Caches.** After each block, a node configuration (``slapos.cfg`` with an ``instance_root``)
  under ``$HOME`` (`GuideRunner.node_configs`) gets the tests' ``toolchain_directory`` and
  ``cache_directory`` if it names none, so the node reuses the toolchain the tests build once
  instead of building its own (minutes).
- **Cleanup.** Background blocks stopped, every supervisord a node configuration names shut down,
  any process still running from the directory (command line or working directory) killed, the
  directory removed.

A failing block fails with the guide's file:line, the block as run and its output.
"""
from __future__ import annotations

import configparser
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs.guide import Block, shell_blocks
from tests.support.processes import kill_processes_under
from tests.support.toolchain import TOOLCHAIN_ROOT, test_toolchain

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
CACHE_ROOT = TOOLCHAIN_ROOT.parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READY_TIMEOUT = 60.0
STOP_WAIT = 10.0
# Carried between blocks: every shell variable but bash's own (PATH is carried: a guide may extend it).
SAVE_STATE = """
__guide_save() {
    { declare -p $(compgen -v | grep -vxF -f "$__GUIDE_RUN/bash-vars") 2>/dev/null || true
      printf 'cd %q\\n' "$PWD"; } > "$__GUIDE_RUN/state.sh"
}
trap __guide_save EXIT
"""


class BlockFailed(AssertionError):
    pass


@dataclass
class GuideRunner:
    guide: Path
    user: str | None = None  # None: the blocks run as whoever runs the tests (root)
    substitutions: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # more environment for every block (e.g. PGHOST)
    timeout: float = 300.0
    setup: str = ""
    link_venv: bool = False  # the copy's .venv is a link to the project's
    transcript: list[str] = field(default_factory=list)
    outputs: dict[int, str] = field(default_factory=dict)  # a block's line → its output

    def run(self) -> list[str]:
        """Run every block of the guide in order; the transcript (each block and its output)."""
        # setup blocks carry negative line numbers, which name them "setup:LINE"
        setup = [Block(-block.line, block.text, block.kinds, block.reason)
                 for block in shell_blocks(self.setup, "setup")]
        blocks = [*setup, *self.blocks()]
        self.top = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
        self.top.chmod(0o755)
        self.home = self.top / "home"
        self.work = self.top / "run"
        self.background: list[tuple[Block, subprocess.Popen, Path]] = []
        try:
            self._prepare()
            for block in blocks:
                if block.runs:
                    self._run_block(block)
                    self.after_block()
        finally:
            self._cleanup()
        return self.transcript

    def blocks(self) -> list[Block]:
        """The guide's blocks with the substitutions made (each must still apply)."""
        blocks = shell_blocks(self.guide.read_text(), self._name())
        for old, _ in self.substitutions:
            if not any(old in block.text for block in blocks if block.runs):
                raise AssertionError(f"{self._name()}: no block contains {old!r} any more: update the test")
        return [Block(block.line, _substitute(block.text, self.substitutions), block.kinds, block.reason)
                for block in blocks]

    # -- setting up -------------------------------------------------------------------------------

    def _prepare(self) -> None:
        repo = self.home / "partita"
        git = ["git", "-c", f"safe.directory={REPO}", "-C", str(REPO), "ls-files", "-z"]
        files = subprocess.run(git, capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
        for name in filter(None, files):
            source, target = REPO / name, repo / name
            if not source.exists() and not source.is_symlink():
                continue  # deleted in the working tree
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
        if self.link_venv:
            (repo / ".venv").symlink_to(VENV_BIN.parent)
        self.work.mkdir()
        bash_vars = subprocess.run(["env", "-i", "bash", "--norc", "--noprofile", "-c", "compgen -v"],
                                   capture_output=True, text=True, check=True, timeout=30).stdout.split()
        (self.work / "bash-vars").write_text("".join(f"{name}\n" for name in bash_vars if name != "PATH")
                                             + "__GUIDE_RUN\n")
        (self.work / "state.sh").write_text(f"cd {repo}\n")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in [self.home, *self.home.rglob("*"), self.work, *self.work.iterdir()]:
                os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
            self._check_venv()

    def _check_venv(self) -> None:
        """The user can run the project's venv (Debian's Python, every directory reachable)."""
        done = subprocess.run(self._command(self.user, [str(VENV_BIN / "slapos"), "--help"]), check=False,
                              capture_output=True, text=True, timeout=60, env=self._environment(self.user))
        if done.returncode != 0:
            config = (VENV_BIN.parent / "pyvenv.cfg")
            home = config.read_text() if config.is_file() else "no pyvenv.cfg"
            raise AssertionError(f"{self.user} cannot run {VENV_BIN / 'slapos'} (the venv must be made from "
                                 f"/usr/bin/python3.11 in a path everyone can reach; {home!r}):\n{done.stderr}")

    def _environment(self, user: str | None) -> dict[str, str]:
        name = user or pwd.getpwuid(os.geteuid()).pw_name
        return {"PATH": f"{VENV_BIN}:{SYSTEM_PATH}", "HOME": str(self.home), "LANG": "C.UTF-8",
                "USER": name, "LOGNAME": name, "__GUIDE_RUN": str(self.work), **self.env}

    def _command(self, user: str | None, argv: list[str]) -> list[str]:
        env = [f"{key}={value}" for key, value in self._environment(user).items()]
        prefix = ["runuser", "-u", user, "--"] if user is not None and os.geteuid() == 0 else []
        return [*prefix, "env", "-i", *env, *argv]

    def _who(self, block: Block) -> str | None:
        if "as-root" in block.kinds:
            return None
        if "as-user" in block.kinds and self.user is None:
            raise AssertionError(f"{self._where(block)}: an as-user block needs a runner with a user")
        return self.user

    # -- running ----------------------------------------------------------------------------------

    def _script(self, block: Block, number: int, *, save: bool) -> Path:
        script = self.work / f"block-{number}.sh"
        script.write_text(f"set +eu\nsource {self.work}/state.sh\n{SAVE_STATE if save else ''}"
                          f"set -euo pipefail\n# {self._where(block)}\n{block.text}")
        if self.user is not None:
            os.chown(script, pwd.getpwnam(self.user).pw_uid, -1)
        return script

    def _run_block(self, block: Block) -> None:
        number = len(self.transcript) + 1
        who = self._who(block)
        if "background" in block.kinds:
            self._start_background(block, number, who)
            return
        script = self._script(block, number, save=True)
        process = subprocess.Popen(self._command(who, ["bash", str(script)]), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        started = time.monotonic()
        try:
            output, _ = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _stop_group(process, signal.SIGKILL)
            output, _ = process.communicate()
            self._fail(block, f"timed out after {self.timeout:g} s", output.decode(errors="replace"))
        text = output.decode(errors="replace")
        self.outputs[block.line] = text
        self.transcript.append(f"$ # {self._where(block)} ({time.monotonic() - started:.1f} s)\n{block.text}{text}")
        if process.returncode != 0:
            self._fail(block, f"exited {process.returncode}", text)

    def _start_background(self, block: Block, number: int, who: str | None) -> None:
        script = self._script(block, number, save=False)
        log_path = self.work / f"block-{number}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(self._command(who, ["bash", str(script)]), stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.background.append((block, process, log_path))
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if b"\n" in log_path.read_bytes():
                break
            if process.poll() is not None:
                self._fail(block, f"(in the background) exited {process.returncode} before saying anything",
                           log_path.read_text(errors="replace"))
            time.sleep(0.1)
        else:
            self._fail(block, f"(in the background) said nothing in {READY_TIMEOUT:g} s", "")
        time.sleep(0.3)
        if process.poll() is not None:
            self._fail(block, f"(in the background) exited {process.returncode}", log_path.read_text(errors="replace"))
        self.transcript.append(f"$ # {self._where(block)} (background)\n{block.text}")

    def _fail(self, block: Block, what: str, output: str) -> None:
        logs = "".join(f"\n--- {self._where(done)} (in the background), its output:\n{_tail(log)}"
                       for done, _, log in self.background)
        raise BlockFailed(f"{self._where(block)}: the block {what}:\n{block.text}--- output:\n{output[-6000:]}{logs}")

    # -- after each block and at the end ----------------------------------------------------------

    def after_block(self) -> None:
        for config in self.node_configs():
            add_caches(config, None if os.lstat(config).st_uid == 0 else self.user)

    def node_configs(self) -> list[Path]:
        """Every ``slapos.cfg`` under ``$HOME`` (``~/.slapos``, or where a guide writes a node's, as
        ``/etc/opt/slapos/node-a`` made ``$HOME/etc/…`` by a substitution), outside the repository's
        copy. Only root's and the guide's user's files and directories: a partition's tree (another
        user's) is never entered, nor a link followed."""
        owners = {0, os.geteuid(), *([pwd.getpwnam(self.user).pw_uid] if self.user is not None else [])}
        found = []
        for directory, subdirectories, files in os.walk(self.home):
            here = Path(directory)
            subdirectories[:] = [name for name in subdirectories
                                 if here / name != self.home / "partita" and _owned(here / name, owners)]
            if "slapos.cfg" in files and _owned(here / "slapos.cfg", owners):
                found.append(here / "slapos.cfg")
        return found

    def _cleanup(self) -> None:
        for _, process, _ in reversed(self.background):
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                if process.poll() is not None:
                    break
                _stop_group(process, sig)
                try:
                    process.wait(timeout=STOP_WAIT)
                except subprocess.TimeoutExpired:
                    pass
        for config in self.node_configs():
            _shutdown_supervisor(config)
        self.swept = kill_processes_under(self.top)  # the last resort: nothing started survives
        shutil.rmtree(self.top, ignore_errors=True)

    def _name(self) -> str:
        try:
            return str(self.guide.relative_to(REPO))
        except ValueError:
            return str(self.guide)

    def _where(self, block: Block) -> str:
        return f"{'setup' if block.line < 0 else self._name()}:{abs(block.line)}"


def _substitute(text: str, substitutions: list[tuple[str, str]]) -> str:
    for old, new in substitutions:
        text = text.replace(old, new)
    return text


def _owned(path: Path, owners: set[int]) -> bool:
    """`path` belongs to one of `owners` and is not a link."""
    try:
        return os.lstat(path).st_uid in owners and not path.is_symlink()
    except OSError:
        return False


def _tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


def _stop_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def add_caches(config: Path, user: str | None) -> None:
    """Point a node configuration with no toolchain/cache of its own at the tests' (see the module)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    if not parser.has_option("slapos", "instance_root"):
        return
    cache = CACHE_ROOT / ("cache" if user is None else f"cache-{user}")
    if parser.has_option("slapos", "toolchain_directory") and parser.has_option("slapos", "cache_directory"):
        return
    test_toolchain()  # built once for every test; the user's cache is theirs, as NodeEnv makes it
    cache.mkdir(parents=True, exist_ok=True)
    if user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(cache, entry.pw_uid, entry.pw_gid)
    changed = False
    for option, value in (("toolchain_directory", TOOLCHAIN_ROOT), ("cache_directory", cache)):
        if not parser.has_option("slapos", option):
            parser.set("slapos", option, str(value))
            changed = True
    if changed:
        with open(config, "r+") as handle:  # in place: the owner and mode stay the guide's
            parser.write(handle)
            handle.truncate()


def _shutdown_supervisor(config: Path) -> None:
    from partita.node.config import node_config
    from partita.node.supervisor import Supervisor
    from partita.slap.config import read_config

    try:
        Supervisor(node_config(read_config(str(config)))).shutdown()
    except Exception as error:  # noqa: BLE001 - cleanup goes on: report but do not mask the test's outcome
        print(f"cleanup: supervisord of {config}: {error}", file=sys.stderr)
