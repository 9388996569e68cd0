"""`slapos node status [NAME…]`: the state of the node's services (supervisorctl status)."""
from __future__ import annotations

from partita.node.cli.supervisor_common import shortcut

command = shortcut("status", "Show the state of services (supervisorctl status).", """Show the
state of the node's services: all of them, or those named ('slappart0:*',
'slappart0:hello-web-on-watch'). The arguments go to supervisorctl status, whose exit status is 3
when a service shown is not running.""")
