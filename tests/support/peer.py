"""The compatibility peer: the real slapos.core 1.26.1, built by ``scripts/peer-setup``.

``scripts/test`` exports ``PARTITA_PEER`` (the peer's virtual environment); without it the default
place of ``scripts/peer-setup`` is used.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Where ``scripts/peer-setup`` builds the peer unless told otherwise.
DEFAULT_PEER = Path(os.environ.get("PARTITA_TEST_ROOT", "/opt/partita-test")) / "peer"
#: The unprivileged user ``scripts/peer-setup`` creates for running the peer's node commands.
NODE_USER = "slapnode"


class PeerMissing(RuntimeError):
    """The peer virtual environment is absent or incomplete."""


@dataclass(frozen=True)
class Peer:
    """Paths into the peer's virtual environment."""

    root: Path

    @property
    def slapos(self) -> Path:
        """The peer's ``slapos`` command."""
        return self.root / "bin" / "slapos"

    @property
    def python(self) -> Path:
        """The peer's Python 3.12 interpreter."""
        return self.root / "bin" / "python"

    @property
    def slapos_noext(self) -> Path:
        """``slapos`` with the public-IP lookup of ``node format`` stubbed out."""
        return self.root / "bin" / "slapos-noext"

    def run(
        self, program: Path, *args: str, user: str | None = None, timeout: float = 120,
        cwd: Path | str = "/",
    ) -> subprocess.CompletedProcess[str]:
        """Run ``program`` with ``args``, as ``user`` through runuser if given; any exit code is returned."""
        command = [str(program), *args]
        if user is not None:
            command = ["runuser", "-u", user, "--", *command]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def find_peer() -> Peer:
    """Return the peer from ``$PARTITA_PEER`` (or the default place), or raise PeerMissing."""
    peer = Peer(Path(os.environ.get("PARTITA_PEER") or DEFAULT_PEER))
    missing = [p for p in (peer.slapos, peer.python, peer.slapos_noext) if not os.access(p, os.X_OK)]
    if missing:
        raise PeerMissing(
            f"the slapos.core 1.26.1 peer is missing or incomplete at {peer.root} "
            f"(no {', '.join(map(str, missing))}): run scripts/peer-setup"
        )
    return peer
