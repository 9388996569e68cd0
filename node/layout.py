"""Names of what the node keeps in a partition and gives its services, shared by the node's modules
and the watchdog (which must stay light: supervisord starts it)."""
from __future__ import annotations

NODE_DIR = ".slapgrid"               # the node's own files in a partition (root-owned in root mode)
TIMESTAMP = ".timestamp"             # the master timestamp last deployed successfully
INSTANCE_FILE = "instance.json"      # in NODE_DIR: what partita:slapconfiguration reads
PROMISE_DIR = "promise"              # in NODE_DIR: one result file per promise
RESOURCE_FILE = ".slapos-resource"   # written by `slapos node format`, kept across destruction
WATCH_SUFFIX = "-on-watch"           # process name suffix of a watched service (etc/service)
