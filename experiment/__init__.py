"""``slapos experiment up|status|collect|down``: a Partita cluster on hosts reached over SSH
(the N hosts of a Grid'5000 reservation), from the machine that reaches them all.

Modules:

- `hosts`: the hosts file (OAR's ``$OAR_NODEFILE``: one line per core, deduplicated in order);
- `ssh`: the system OpenSSH client (``ssh``/``scp``) and a thread pool over hosts;
- `layout`: pure rules: each host's remote directory, node ranges and settings;
- `state`: the local state file under ``--dir``;
- `wheelhouse`: the wheels every host installs from (Partita, its dependencies, the node toolchain's);
- `remote`: the steps run on the hosts (install, PostgreSQL and master, node, stop, collect);
- `cli/`: one file per command.

The hosts need SSH, Debian's ``/usr/bin/python3.11`` (with ``venv``), iproute2 and, on the first
host, PostgreSQL's server binaries; they need no package index.
"""
