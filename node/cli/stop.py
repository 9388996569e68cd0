"""`slapos node stop NAME…`: stop services of the node's supervisord (supervisorctl stop)."""
from __future__ import annotations

from partita.node.cli.supervisor_common import shortcut

command = shortcut("stop", "Stop services (supervisorctl stop).", """Stop services of the node's
supervisord: 'slappart0:*', 'slappart0:hello-web-on-watch' or 'all'. The arguments go to
supervisorctl stop. The next node pass starts again what its instance wants started.""")
