"""A real master (proxy mode, SQLite) served on loopback in a thread, for the client and CLI tests.

Import the fixtures into a test module (``from tests.slap.live_master import master  # noqa``).
The computer ``local_computer`` is formatted through the client with three partitions,
``slappart0..2`` on 127.0.1.1-3.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from partita.slap.client import MasterClient

COMPUTER = "local_computer"
PARTITIONS = 3
SR = "/srv/software/hello/software.cfg"


@dataclass
class LiveMaster:
    url: str
    client: MasterClient
    cfg: Path

    def partition_client(self, partition: str) -> MasterClient:
        """A client acting as `partition` of the local computer (what a node's instance sends)."""
        return MasterClient(self.url, partition=(COMPUTER, partition), timeout=10)

    def act_as_node(self, guid: str, connection: dict[str, str] | None = None,
                    state: str = "started") -> None:
        """Build the SR, report `state` and publish `connection`, as a node pass would."""
        doc = self.client.get_instance(guid)
        self.client.supply(COMPUTER, doc["software_release_uri"])
        self.client.report_software_installation_state(COMPUTER, doc["software_release_uri"], "available")
        if connection is not None:
            self.client.set_connection_parameters(guid, connection)
        self.client.report_instance_state(guid, state)


def partition_list(count: int = PARTITIONS) -> list[dict]:
    return [
        {"partition_id": f"slappart{i}",
         "ip_list": [{"ip-address": f"127.0.1.{i + 1}", "network-interface": "lo", "netmask": "255.255.255.255"}]}
        for i in range(count)
    ]


def closed_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_client_cfg(path: Path, master_url: str) -> Path:
    path.write_text(f"[slapos]\nmaster_url = {master_url}\n", encoding="utf-8")
    return path


@pytest.fixture
def master(tmp_path: Path) -> Iterator[LiveMaster]:
    """A fresh master with `local_computer` formatted, its URL, a client and a client config file."""
    from partita.master.app import create_app
    from partita.master.db import migrate
    from partita.master.db.database import Database
    from partita.master.settings import AppSettings

    db = Database("sqlite:///" + str(tmp_path / "master.sqlite"))
    migrate.upgrade(db.engine)
    app = create_app(db, AppSettings(mode="proxy", computer_id=COMPUTER))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="live-master", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    client = MasterClient(url, timeout=10)
    try:
        client.format_compute_node(COMPUTER, partition_list())
        yield LiveMaster(url, client, write_client_cfg(tmp_path / "slapos-client.cfg", url))
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
        db.dispose()
