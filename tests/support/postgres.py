"""A throwaway PostgreSQL cluster for the tests.

PostgreSQL refuses to run as root, so when the tests run as root the cluster runs as the
``postgres`` system user (created by Debian's ``postgresql`` package) through ``runuser``; if that
user does not exist, as a dedicated unprivileged user created on the fly. As any other user, the
cluster runs as that user directly.

The cluster lives in a fresh temporary directory (data directory, unix socket, log), listens on
127.0.0.1 on a free port with ``trust`` authentication, and trades durability for speed (no fsync).
Tests get databases from it as SQLAlchemy URLs::

    server = start_server()
    url = server.create_database("t_example")   # postgresql+psycopg://postgres@127.0.0.1:PORT/t_example
    ...
    server.drop_database("t_example")
    server.stop()

Every subprocess call and every connection has a deadline.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

#: PostgreSQL major version the tests expect (Debian 12's).
MAJOR_VERSION = 15
#: Unprivileged user created to run the cluster when root and Debian's ``postgres`` user is absent.
FALLBACK_USER = "partita-pg"
#: Seconds allowed for initdb and for the server to start or stop.
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0

_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    # Durability is worthless for a throwaway cluster; speed is not.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the cluster could not be started."""


def find_bindir() -> Path:
    """Return the directory of the PostgreSQL server binaries (``initdb``, ``pg_ctl``).

    Looks at ``$PARTITA_PG_BINDIR``, then Debian's ``/usr/lib/postgresql/15/bin``, then any other
    ``/usr/lib/postgresql/*/bin``, then ``initdb`` on ``PATH``.
    """
    candidates = []
    if os.environ.get("PARTITA_PG_BINDIR"):
        candidates.append(Path(os.environ["PARTITA_PG_BINDIR"]))
    candidates.append(Path(f"/usr/lib/postgresql/{MAJOR_VERSION}/bin"))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on "
        "PATH; install them with `apt-get install postgresql` (scripts/test does it)"
    )


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> tuple[str, bool]:
    """Return (the user the cluster runs as, whether commands need ``runuser`` to become it)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name, False  # not $USER, which su/sudo may keep
    for name in ("postgres", FALLBACK_USER):
        try:
            pwd.getpwnam(name)
            return name, True
        except KeyError:
            pass
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home",
         "--shell", "/usr/sbin/nologin", FALLBACK_USER],
        check=True, capture_output=True, timeout=COMMAND_TIMEOUT,
    )
    return FALLBACK_USER, True


@dataclass
class PostgresServer:
    """A running throwaway cluster; ``stop()`` stops it and removes its directory."""

    bindir: Path
    base_dir: Path
    port: int
    user: str
    use_runuser: bool

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """The directory of the cluster's unix socket."""
        return self.base_dir / "socket"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.base_dir / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        """Return the SQLAlchemy URL of database ``dbname`` (trust authentication on loopback)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """Return the libpq connection string of database ``dbname``."""
        return (
            f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname} "
            f"connect_timeout=10 options='-c statement_timeout=60000'"
        )

    def run(self, *args: str | Path, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary as the cluster's user, in the cluster's directory."""
        command = [str(self.bindir / str(args[0])), *map(str, args[1:])]
        if self.use_runuser:
            command = ["runuser", "-u", self.user, "--", *command]
        # cwd: the server user may not be allowed into the caller's working directory.
        return subprocess.run(
            command, cwd=self.base_dir, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "LC_ALL": "C"},
        )

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its SQLAlchemy URL."""
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_checked(name))))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting whoever is still connected to it."""
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_checked(name)))
        )

    def _execute(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            connection.execute(statement)

    def stop(self) -> None:
        """Stop the server (fast shutdown, immediate if that fails) and remove its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                result = self.run("pg_ctl", "-D", self.data_dir, "-m", "fast", "-w",
                                  "-t", str(int(START_TIMEOUT)), "stop",
                                  timeout=START_TIMEOUT + 10)
                if result.returncode != 0:
                    self.run("pg_ctl", "-D", self.data_dir, "-m", "immediate", "-w",
                             "-t", str(int(START_TIMEOUT)), "stop", timeout=START_TIMEOUT + 10)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _checked(name: str) -> str:
    """Return ``name`` if it is a plain lowercase database name, else raise ValueError."""
    if not _DB_NAME.match(name):
        raise ValueError(f"bad test database name {name!r}: use [a-z0-9_], at most 63 characters")
    return name


def start_server(attempts: int = 3) -> PostgresServer:
    """Create and start a throwaway cluster, and return it once it accepts connections.

    Raises PostgresUnavailable when the binaries are missing or the server does not start.
    A port taken between choosing and binding it is retried on another port.
    """
    bindir = find_bindir()
    user, use_runuser = _server_user()
    # Through runuser, the server user must be able to reach the directory: $TMPDIR might be
    # under a private home, /tmp never is.
    parent = os.environ.get("PARTITA_PG_TMPDIR") or ("/tmp" if use_runuser else None)
    base_dir = Path(tempfile.mkdtemp(prefix="partita-pg-", dir=parent))
    try:
        if use_runuser:
            entry = pwd.getpwnam(user)
            os.chown(base_dir, entry.pw_uid, entry.pw_gid)
        server = PostgresServer(bindir, base_dir, 0, user, use_runuser)
        _initdb(server)
        for attempt in range(1, attempts + 1):
            server.port = _free_port()
            if _start(server, last_attempt=attempt >= attempts):
                return server
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise
    raise PostgresUnavailable("PostgreSQL did not start")  # only with attempts < 1


def _initdb(server: PostgresServer) -> None:
    """Create the cluster's data directory and socket directory."""
    result = server.run(
        "initdb", "-D", server.data_dir, "-U", server.user, "--auth=trust",
        "--encoding=UTF8", "--locale=C", "--no-sync",
    )
    if result.returncode != 0:
        raise PostgresUnavailable(f"initdb failed:\n{result.stdout}{result.stderr}")
    os.makedirs(server.socket_dir, exist_ok=True)
    if server.use_runuser:
        entry = pwd.getpwnam(server.user)
        os.chown(server.socket_dir, entry.pw_uid, entry.pw_gid)


def _start(server: PostgresServer, last_attempt: bool) -> bool:
    """Start the server on ``server.port``; return False if it failed and may be retried."""
    settings = {**_SETTINGS, "port": str(server.port),
                "unix_socket_directories": f"'{server.socket_dir}'"}
    # Appended last, these win over initdb's defaults (the file keeps its owner).
    with open(server.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n# partita test settings\n")
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    result = server.run("pg_ctl", "-D", server.data_dir, "-l", server.log_file, "-w",
                        "-t", str(int(START_TIMEOUT)), "start", timeout=START_TIMEOUT + 10)
    if result.returncode == 0 and _wait_ready(server):
        return True
    server.run("pg_ctl", "-D", server.data_dir, "-m", "immediate", "stop", timeout=START_TIMEOUT)
    if last_attempt:
        raise PostgresUnavailable(
            f"PostgreSQL did not start on 127.0.0.1:{server.port}:\n{result.stdout}{result.stderr}\n"
            f"server log:\n{_tail(server.log_file)}"
        )
    return False


def _wait_ready(server: PostgresServer) -> bool:
    """Wait until the server accepts TCP connections on loopback, at most START_TIMEOUT seconds."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        result = server.run("pg_isready", "-h", "127.0.0.1", "-p", str(server.port),
                            "-U", server.user, "-t", "5", timeout=10)
        if result.returncode == 0:
            return True
        time.sleep(0.1)
    return False


def _tail(path: Path, lines: int = 30) -> str:
    """Return the last lines of a log file, or a note that it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"({error})"
