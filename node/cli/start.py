"""`slapos node start NAME…`: start services of the node's supervisord (supervisorctl start)."""
from __future__ import annotations

from partita.node.cli.supervisor_common import shortcut

command = shortcut("start", "Start services (supervisorctl start).", """Start services of the
node's supervisord: 'slappart0:*' (every service of a partition), 'slappart0:hello-web-on-watch'
(one service) or 'all'. The arguments go to supervisorctl start.""")
