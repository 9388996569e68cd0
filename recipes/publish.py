"""``partita:publish``: publish connection parameters (URLs, users, passwords) to the master.

Every option of the section is published, except ``recipe`` and the options whose name starts
with ``-``, which steer the recipe::

    [publish]
    recipe = partita:publish
    url = http://${slap-configuration:ipv4-random}:8080/
    -extends = monitor-publish           # merge these sections' options first
    -publish = url                       # publish only these keys
    -slave-reference = SOFTINST-12       # publish for this hosted shared instance (guid or title)
    -serialised = true                   # publish {"_": "<the values as JSON>"}

Publishing happens at install and at every update, so the master always holds the values of
the last successful run.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from partita.recipes.common import fail, flag, master_client, slap_connection, words
from partita.slap.errors import ClientError

_STEERING = ("-extends", "-publish", "-slave-reference", "-serialised")


def own_values(options: Mapping[str, str]) -> dict[str, str]:
    """The options of a section that are published: all but ``recipe`` and ``-…``."""
    return {key: options[key] for key in options if key != "recipe" and not key.startswith("-")}


def collect(buildout: Any, options: Mapping[str, str], name: str) -> dict[str, str]:
    """The values to publish: the ``-extends`` sections' options, then this section's,
    restricted to ``-publish`` when it is given."""
    values: dict[str, str] = {}
    for other in words(options.get("-extends", "")):
        try:
            values.update(own_values(buildout[other]))
        except KeyError:
            raise fail(f"[{name}] -extends names a section that does not exist: [{other}]") from None
    values.update(own_values(options))
    only = words(options.get("-publish", ""))
    if only:
        missing = [key for key in only if key not in values]
        if missing:
            raise fail(f"[{name}] -publish names values that are not defined: {' '.join(missing)}")
        values = {key: values[key] for key in only}
    return values


class Recipe:
    """Publishes at install and update; creates no file."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        self.name = name
        unknown = [key for key in options if key.startswith("-") and key not in _STEERING]
        if unknown:
            raise fail(f"[{name}] unknown option {unknown[0]!r} (options starting with '-' steer the "
                       f"recipe: {', '.join(_STEERING)})")
        self.connection = slap_connection(buildout, name)
        if not self.connection.instance_guid:
            raise fail(f"[{name}] needs [slap-connection] instance-guid, written by the Partita node")
        self.values = collect(buildout, options, name)
        self.shared_reference = options.get("-slave-reference", "").strip() or None
        self.serialised = flag(options, "-serialised", name)

    def install(self) -> list[str]:
        payload: dict[str, Any] = dict(self.values)
        if self.serialised:
            payload = {"_": json.dumps(self.values, sort_keys=True)}
        with master_client(self.connection) as client:
            try:
                client.set_connection_parameters(self.connection.instance_guid, payload,
                                                 shared_instance_guid=self.shared_reference)
            except ClientError as error:
                raise fail(f"[{self.name}] cannot publish: {error}") from None
        return []

    update = install
