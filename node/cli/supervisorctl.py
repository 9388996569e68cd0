"""`slapos node supervisorctl [ARGS…]`: supervisorctl against the node's supervisord."""
from __future__ import annotations

from partita.node.cli.supervisor_common import shortcut

command = shortcut(None, "Run supervisorctl against the node's supervisord.", """Run supervisorctl
against the node's supervisord: 'slapos node supervisorctl status', '... pid', '... maintail -f',
'... update'. Without arguments, supervisorctl's own shell.""")
