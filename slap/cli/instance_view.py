"""How `request`, `info`, `start`, `stop` and `destroy` show one instance: what its instance gets.

The master stores parameters as they were sent. An instance of a release that declares
``"serialisation": "xml"`` (`slap.software_descriptor`) reads each parameter as a string, and a
``_`` parameter as one string too: its parameters are shown as they are stored. Otherwise a
``_`` holding JSON is decoded (SlapOS's json-in-xml convention, `slap.cli.common.decode_underscore`),
as the instance's ``slapconfiguration`` decodes it. The descriptor is read only when a ``_`` is
there, so showing an instance of flat parameters costs no extra IO.

In tables the status reason is one line, at most `STATUS_LIMIT` characters (cut in the middle,
`slap.cli.output.shorten_middle`): ``--format json`` keeps it whole.
"""
from __future__ import annotations

from typing import Any

from partita.slap import software_descriptor
from partita.slap.cli.common import decode_underscore, summary, where
from partita.slap.cli.output import echo_err, print_json, print_mapping, shorten_middle, single_line
from partita.slap.wire.instance import InstanceDocument

STATUS_LIMIT = 300


def shown_parameters(parameters: dict[str, Any], serialisation: str | None) -> dict[str, Any]:
    """The parameters as the instance reads them, for a release declaring `serialisation`."""
    if serialisation == software_descriptor.XML:
        return dict(parameters)
    return decode_underscore(parameters)


def release_serialisation(doc: InstanceDocument) -> str | None:
    """What the instance's release declares, looked up only when it matters (a ``_`` parameter)."""
    if "_" not in doc.parameters:
        return None
    return software_descriptor.serialisation_of(doc.software_release_uri)


def instance_data(doc: InstanceDocument, serialisation: str | None) -> dict[str, Any]:
    """`slap.cli.common.summary` with the parameters the instance gets."""
    data = summary(doc)
    data["parameters"] = shown_parameters(doc.parameters, serialisation)
    return data


def show_instance(doc: InstanceDocument, output_format: str) -> None:
    """An instance document as JSON or as key/value tables, its parameters as its instance gets them."""
    serialisation = release_serialisation(doc)
    data = instance_data(doc, serialisation)
    if serialisation == software_descriptor.XML:
        echo_err(f"note: the software release of {doc.title!r} declares xml serialisation: its instance "
                 "reads '_' as one string; request it again with the parameters to send each one")
    if output_format == "json":
        print_json(data)
        return
    state = data["state"]
    if data["reported_state"] and data["reported_state"] != state:
        state = f"{state} (reported: {data['reported_state']})"
    print_mapping({
        "title": data["title"],
        "state": state,
        "status": shorten_middle(single_line(data["status_reason"]), STATUS_LIMIT),
        "partition": where(doc),
        "software release": data["software_release"],
        "software type": data["software_type"],
        "shared": "yes" if data["shared"] else "no",
        "instance guid": data["instance_guid"],
    })
    print_mapping(data["parameters"], title="Parameters:")
    print_mapping(data["connection_parameters"], title="Connection parameters:")
