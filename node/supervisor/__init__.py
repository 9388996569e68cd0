"""The node's supervisord: one per node, shared by every partition, outliving the node's runs.

Layout under ``instance_root`` (as SlapOS)::

    etc/supervisord.conf            the main configuration (written by `Supervisor.ensure_running`)
    etc/supervisord.conf.d/P.conf   one file per partition P: ``[group:P]`` and its programs
    sv.sock                         the XML-RPC unix socket (mode 0700)
    var/run/supervisord.pid         var/log/supervisord.log, var/log/watchdog.log

``etc``, ``etc/supervisord.conf.d``, ``var/run`` and ``var/log`` are the node's own (0700): no
partition reads another's programs, the node's logs or its locks. Each program's output goes to
``<partition>/.P_<name>.log``, which supervisord (root) opens without following what the
partition's user planted there (`node.supervisor.supervisord`, the entry point the node starts).

Each file of ``<partition>/etc/service`` is a *watched* program: its process is named
``<name>-on-watch`` and the watchdog (`node.watchdog`, the event listener declared in the main
configuration) asks the master to process the instance again when it exits. Each file of
``<partition>/etc/run`` is a program that is started but not watched: supervisord restarts it
itself when it dies with a status other than 0 (three quick retries at most, then FATAL).

The package, in three rooms:

    config.py   the configuration text: pure functions of the node's configuration and programs
    rpc.py      XML-RPC over the unix socket, with a deadline on every call (the watchdog uses it)
    daemon.py   `Supervisor`: start or adopt supervisord, shut it down, apply/start/stop groups
    supervisord.py  supervisord itself, its log files opened safely (``python -m`` it)

Everything other modules use is importable from here.
"""
from __future__ import annotations

from partita.node.supervisor.config import (
    MAX_SOCKET_PATH,
    STOP_WAIT_SECONDS,
    WATCHDOG_GROUP,
    Program,
    check_names,
    check_socket_path,
    file_digest,
    main_config_path,
    programs_in,
    render_group,
    render_main_config,
)
from partita.node.supervisor.daemon import (
    DEFAULT_PATH,
    POLL_INTERVAL,
    PROBE_TIMEOUT,
    RUNNING_STATES,
    STOP_TIMEOUT,
    ProcessInfo,
    Supervisor,
)
from partita.node.supervisor.rpc import RPC_TIMEOUT, SupervisorNotRunning, rpc

__all__ = [
    "DEFAULT_PATH", "MAX_SOCKET_PATH", "POLL_INTERVAL", "PROBE_TIMEOUT", "RPC_TIMEOUT", "RUNNING_STATES",
    "STOP_TIMEOUT", "STOP_WAIT_SECONDS", "WATCHDOG_GROUP", "ProcessInfo", "Program", "Supervisor",
    "SupervisorNotRunning", "check_names", "check_socket_path", "file_digest", "main_config_path",
    "programs_in", "render_group", "render_main_config", "rpc",
]
