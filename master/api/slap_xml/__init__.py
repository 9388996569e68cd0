"""The SLAP XML adapter: the protocol the real slapos.core 1.26 client, `slapos request/supply` and
slapgrid speak (``reference/slap-protocol.md`` §2), served by the master and the proxy.

Its modules, from the wire inwards:

- `routes`: the Flask blueprint, one route per endpoint; parse, call the services, answer;
- `forms`: the form fields of a call (presence, the ``"None"`` convention, marshalled values);
- `encode`: service views -> the ``slapos.slap.slap`` objects the answers carry (pure);
- `computer_cache`: getFullComputerInformation answers and partition fragments, per process;
- `marshal`: the xml_marshaller-compatible codec (safe decoding, exact encoding, fragments);
- `instance_xml`: the ``<instance>`` parameter XML (also read by the HATEOAS adapter).

Only the master (and the proxy, which serves the master's app) speaks it; Partita's own client,
node and recipes use the JSON API, so the codec lives here, not in `slap`.
"""
from partita.master.api.slap_xml.routes import blueprint

__all__ = ["blueprint"]
