"""`scripts/demo` deploys only onto the proxy it started (issue 11): with another Partita proxy on
its port, it stops with one line naming the port, and the other proxy's catalog is untouched."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.server import SLAPOS, start

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo"


def catalog(config: Path) -> dict:
    shown = subprocess.run([SLAPOS, "proxy", "show", "--cfg", str(config), "--format", "json"],
                           capture_output=True, text=True, timeout=60, check=True)
    return json.loads(shown.stdout)


def test_demo_on_a_port_held_by_another_proxy_stops_with_one_line(tmp_path: Path) -> None:
    other = start(tmp_path, ("proxy", "start"))
    port = other.url.rsplit(":", 1)[1]
    before = catalog(other.config_path)
    work = tmp_path / "demo"
    try:
        done = subprocess.run([str(DEMO), "--port", port], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PARTITA_DEMO_DIR": str(work), "PARTITA_DEMO_SKIP_INSTALL": "1"})
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.splitlines() == [
            f"demo: the proxy did not start: port {port} on 127.0.0.1 is in use: another server listens "
            "there (stop it, or choose another port)"], done.stderr
        assert "node format" not in done.stdout and "supply" not in done.stdout, done.stdout
        assert other.process.poll() is None
        assert catalog(other.config_path) == before  # nothing formatted, supplied or requested there
        assert not (work / "proxy.ready").exists() and not (work / "node.pid").exists()
    finally:
        other.stop()
        subprocess.run([str(DEMO), "stop"], capture_output=True, timeout=120,
                       env={**os.environ, "PARTITA_DEMO_DIR": str(work)})
