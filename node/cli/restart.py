"""`slapos node restart NAME…`: restart services of the node's supervisord (supervisorctl restart)."""
from __future__ import annotations

from partita.node.cli.supervisor_common import shortcut

command = shortcut("restart", "Restart services (supervisorctl restart).", """Restart services of
the node's supervisord: 'slappart0:*', 'slappart0:hello-web-on-watch' or 'all'. The arguments go
to supervisorctl restart.""")
