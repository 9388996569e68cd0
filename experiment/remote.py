"""The steps run on the hosts, each a fixed shell script over `ssh.Ssh` (values passed as
arguments, never pasted into the script). Every step is idempotent: it checks what is there and
completes it, so ``up`` on a running experiment does nothing twice.

A host's remote directory ``D`` holds: ``wheelhouse/`` and ``venv/`` (Partita, installed with
``pip --no-index``), ``installed`` (the wheelhouse digest installed); on the master's host
``postgres/`` (``data/``, ``run/`` its only socket, ``log/``) and ``master/`` (``master.cfg``,
``pki/``, ``packages/``, ``master.pid``, ``master.log``); on a node's ``node/`` (``slapos.cfg``,
``ssl/``, ``node-run.pid``, ``node-run.log``), ``srv/`` (partitions) and ``soft/`` (software).
"""
from __future__ import annotations

from partita.experiment.errors import SshError
from partita.experiment.ssh import Ssh

PYTHON = "/usr/bin/python3.11"
DB_ROLE = "partita"
DB_NAME = "partita"
INSTALL_TIMEOUT = 900.0

_MISSING_WHEELS = """
umask 022
mkdir -p "$1"
cd "$1"
shift
for name in "$@"; do [ -f "$name" ] || echo "$name"; done
"""

_INSTALL = """
umask 022
dir=$1; digest=$2; python=$3; wheel=$4
if [ "$(cat "$dir/installed" 2>/dev/null)" = "$digest" ] && [ -x "$dir/venv/bin/slapos" ]; then
    echo installed; exit 0
fi
[ -x "$python" ] || { echo "$python is missing (Debian: apt install python3.11-venv)" >&2; exit 1; }
[ -x "$dir/venv/bin/python" ] || "$python" -m venv "$dir/venv"
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$dir/venv/bin/pip" install -q --no-index --find-links "$dir/wheelhouse" "$dir/wheelhouse/$wheel"
"$dir/venv/bin/pip" install -q --no-index --no-deps --force-reinstall "$dir/wheelhouse/$wheel"
echo "$digest" > "$dir/installed"
echo "made"
"""

_ADDRESS = """
address=${SSH_CONNECTION#* * }
address=${address%% *}
interface=$(ip -o addr show to "$address" | awk '{print $2; exit}')
[ -n "$interface" ] || { echo "no interface carries $address" >&2; exit 1; }
echo "$address $interface"
ip -o -6 addr show dev "$interface" scope global | awk '{print $4}'
"""

_START_DAEMON = """
umask 022
pidfile=$1; log=$2; marker=$3; directory=$4; shift 4
if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if [ -r "/proc/$pid/cmdline" ] && tr '\\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$marker"; then
        echo running; exit 0
    fi
fi
cd "$directory"
setsid -f sh -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" >>"$log" 2>&1 </dev/null
echo started
"""

_ALIVE = """
pid=$(cat "$1" 2>/dev/null) || { echo stopped; exit 0; }
if [ -r "/proc/$pid/cmdline" ] && tr '\\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$2"; then
    echo alive
else
    echo dead
fi
"""

_STOP_DAEMON = """
pidfile=$1; marker=$2
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
if [ -r "/proc/$pid/cmdline" ] && tr '\\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$marker"; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while [ -d "/proc/$pid" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
"""

_SWEEP = """
# every process still running from the remote directory (command line or working directory)
import os, signal, sys
prefix = sys.argv[1] + "/"
for name in os.listdir("/proc"):
    if not name.isdigit() or int(name) in (os.getpid(), os.getppid()):
        continue
    try:
        line = open(f"/proc/{name}/cmdline", "rb").read().replace(b"\\0", b" ").decode(errors="replace")
        cwd = os.readlink(f"/proc/{name}/cwd") + "/"
    except OSError:
        continue
    if prefix in line or cwd.startswith(prefix):
        try:
            os.kill(int(name), signal.SIGKILL)
            print(name)
        except ProcessLookupError:
            pass
"""

_POSTGRES = """
umask 022
dir=$1; user=$2; role=$3; database=$4
created=no
if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    created=yes
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "no PostgreSQL server in /usr/lib/postgresql/*/bin (apt install postgresql)" >&2; exit 1; }
pg=$dir/postgres
mkdir -p "$pg"
cd "$pg"
for sub in data run log; do
    mkdir -p "$pg/$sub"; chown "$user" "$pg/$sub"; chmod 0700 "$pg/$sub"
done
if [ ! -f "$pg/data/PG_VERSION" ]; then
    runuser -u "$user" -- "$bindir/initdb" -D "$pg/data" -U "$role" --auth=trust -E UTF8 >"$pg/log/initdb.log" 2>&1 \
        || { tail -n 3 "$pg/log/initdb.log" >&2; exit 1; }
    printf "listen_addresses = ''\\nunix_socket_directories = '%s'\\nunix_socket_permissions = 0700\\n" "$pg/run" \
        >> "$pg/data/postgresql.conf"
fi
if ! runuser -u "$user" -- "$bindir/pg_ctl" -D "$pg/data" status >/dev/null 2>&1; then
    runuser -u "$user" -- "$bindir/pg_ctl" -D "$pg/data" -l "$pg/log/postgresql.log" -w -t 60 start >/dev/null \\
        || { tail -n 3 "$pg/log/postgresql.log" >&2; exit 1; }
fi
if ! runuser -u "$user" -- "$bindir/psql" -h "$pg/run" -U "$role" -d postgres -tAc \\
        "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
    runuser -u "$user" -- "$bindir/createdb" -h "$pg/run" -U "$role" "$database"
fi
echo "created=$created"
"""

_STOP_POSTGRES = """
dir=$1; user=$2; remove_user=$3
pg=$dir/postgres
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -f "$pg/data/PG_VERSION" ] && id -u "$user" >/dev/null 2>&1; then
    cd "$pg"
    runuser -u "$user" -- "$bindir/pg_ctl" -D "$pg/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
fi
if [ "$remove_user" = yes ] && id -u "$user" >/dev/null 2>&1; then
    pkill -KILL -u "$user" 2>/dev/null || true
    sleep 0.2
    userdel "$user"
fi
"""

_WRITE_PRIVATE = """
umask 077
mkdir -p "$(dirname "$1")"
cat > "$1.new"
mv -f "$1.new" "$1"
"""

_PUBLISH_PACKAGES = """
umask 022
mkdir -p "$2"
for file in "$1"/*; do [ -f "$file" ] && mv -f "$file" "$2/"; done
exit 0
"""

_REMOVE_DIRECTORY = """
[ -d "$1" ] || exit 0
rm -rf --one-file-system -- "$1"
"""


def missing_wheels(ssh: Ssh, host: str, directory: str, names: list[str]) -> list[str]:
    """Those of `names` that `directory` on `host` lacks (the directory is made)."""
    done = ssh.script(host, _MISSING_WHEELS, directory, *names)
    return done.stdout.decode().split()


def publish_packages(ssh: Ssh, host: str, incoming: str, packages: str) -> None:
    """Move the files of `incoming` into the package index `packages` (one file system: a node
    never reads half a file)."""
    ssh.script(host, _PUBLISH_PACKAGES, incoming, packages)


def install(ssh: Ssh, host: str, directory: str, digest: str, wheel: str, python: str = PYTHON) -> str:
    """Partita installed in ``D/venv`` from ``D/wheelhouse``: ``installed`` (already) or ``made``."""
    done = ssh.script(host, _INSTALL, directory, digest, python, wheel, timeout=INSTALL_TIMEOUT)
    return done.stdout.decode().strip().splitlines()[-1]


def address(ssh: Ssh, host: str) -> tuple[str, str, list[str]]:
    """The address SSH reached on `host`, the interface carrying it and that interface's global
    IPv6 addresses (``ADDRESS/PREFIXLEN``)."""
    lines = ssh.script(host, _ADDRESS).stdout.decode().split("\n")
    words = lines[0].split()
    if len(words) != 2:
        raise SshError(host, "cannot tell the address SSH reached")
    return words[0], words[1], [line.strip() for line in lines[1:] if line.strip()]


def start_daemon(ssh: Ssh, host: str, argv: list[str], *, pidfile: str, log: str, marker: str,
                 directory: str) -> str:
    """`argv` in the background on `host` (own session, pidfile, appended log): ``started``, or
    ``running`` if the pidfile names a live process whose command line holds `marker`."""
    return ssh.script(host, _START_DAEMON, pidfile, log, marker, directory, *argv).stdout.decode().strip()


def daemon_state(ssh: Ssh, host: str, pidfile: str, marker: str) -> str:
    """``alive``, ``dead`` (a pidfile, no such process) or ``stopped`` (no pidfile)."""
    return ssh.script(host, _ALIVE, pidfile, marker).stdout.decode().strip()


def stop_daemon(ssh: Ssh, host: str, pidfile: str, marker: str) -> None:
    ssh.script(host, _STOP_DAEMON, pidfile, marker, timeout=60)


def sweep(ssh: Ssh, host: str, directory: str, python: str = PYTHON) -> list[int]:
    """SIGKILL what still runs from `directory` on `host`; the pids."""
    return [int(word) for word in ssh.run(host, [python, "-c", _SWEEP, directory]).stdout.split()]


def postgres(ssh: Ssh, host: str, directory: str, user: str) -> bool:
    """PostgreSQL running as `user` under ``D/postgres`` with the catalog's database; whether
    `user` was created now."""
    done = ssh.script(host, _POSTGRES, directory, user, DB_ROLE, DB_NAME, timeout=180)
    return "created=yes" in done.stdout.decode()


def database_uri() -> str:
    """The catalog's URI: no host, so libpq takes the socket directory from ``PGHOST`` (`database_env`):
    a ``?host=/path`` in the URI would be percent-encoded, which the migrations' configuration refuses."""
    return f"postgresql+psycopg://{DB_ROLE}@/{DB_NAME}"


def database_env(directory: str) -> list[str]:
    """``env PGHOST=…``: the prefix of every master command on its host."""
    return ["env", f"PGHOST={directory}/postgres/run"]


def stop_postgres(ssh: Ssh, host: str, directory: str, user: str, remove_user: bool) -> None:
    ssh.script(host, _STOP_POSTGRES, directory, user, "yes" if remove_user else "no", timeout=120)


def write_private(ssh: Ssh, host: str, path: str, text: str) -> None:
    """`text` written to `path` on `host`, owner-only, replacing it atomically."""
    ssh.script(host, _WRITE_PRIVATE, path, input=text.encode())


def read_file(ssh: Ssh, host: str, path: str) -> str | None:
    done = ssh.run(host, ["cat", "--", path], check=False)
    return done.stdout.decode() if done.returncode == 0 else None


def remove_directory(ssh: Ssh, host: str, directory: str) -> None:
    ssh.script(host, _REMOVE_DIRECTORY, directory, timeout=300)


def slapos(ssh: Ssh, host: str, directory: str, *args: str, timeout: float = 300,
           check: bool = True, prefix: tuple[str, ...] = (), input: bytes | None = None) -> str:
    """``D/venv/bin/slapos ARGS`` on `host` (after `prefix`, e.g. ``env X=Y``; `input` on its
    standard input); its output."""
    done = ssh.run(host, [*prefix, f"{directory}/venv/bin/slapos", *args], timeout=timeout, check=check,
                   input=input)
    return done.stdout.decode()
