"""Partita's own codecs for the SLAP XML wire formats.

`slap.xml.marshal` reads and writes the xml_marshaller payloads of the SLAP protocol;
`slap.xml.instance_xml` reads and writes the ``<instance>`` parameter XML.
"""
from partita.slap.xml.instance_xml import dict_to_instance_xml, instance_xml_to_dict
from partita.slap.xml.marshal import (
    MarshalObject, dumps, loads, loads_bool, loads_dict, loads_optional_str,
)

__all__ = [
    "MarshalObject", "dumps", "loads", "loads_bool", "loads_dict", "loads_optional_str",
    "dict_to_instance_xml", "instance_xml_to_dict",
]
