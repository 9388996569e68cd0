"""`slapos node tail [-f] NAME`: the output of a service (supervisorctl tail)."""
from __future__ import annotations

from partita.node.cli.supervisor_common import shortcut

command = shortcut("tail", "Show a service's output (supervisorctl tail).", """Show the end of a
service's output: 'slapos node tail slappart0:hello-web-on-watch'; -f follows it (Ctrl-C ends),
-1600 shows the last 1600 bytes. The arguments go to supervisorctl tail.""")
