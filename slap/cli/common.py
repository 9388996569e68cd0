"""What the client commands share: ``--cfg`` and ``--format``, the client, instance summaries.

Configuration: ``--cfg FILE``, else ``$SLAPOS_CLIENT_CONFIGURATION``, else the first of
``~/.slapos/slapos-client.cfg``, ``~/.slapos/slapos.cfg``, ``/etc/opt/slapos/slapos.cfg``
(`slap.config.find_config_file`); the commands read ``[slapos] master_url`` and,
for https, ``partita_ca_file`` (the master CA to verify it against) and ``key_file``/``cert_file``
or ``api_token`` (who we are).

Instances: the master's answers are read as the JSON API's instance documents
(`slap.wire.instance`: `read_instance`, `read_tree`); a malformed answer is one error line.

Display: a ``_`` parameter holding JSON (SlapOS's json-in-xml convention) is decoded before
printing, for tables and JSON alike.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from partita.slap.cli.main import EXIT_NOT_READY  # noqa: F401  (re-exported for the commands)
from partita.slap.client import MasterClient, connect
from partita.slap.config import CLIENT_CFG_HELP, ClientConfig, client_config, read_config
from partita.slap.wire.instance import InstanceDocument, TreeEntry, parse_instance, parse_tree_entry

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json")

SUMMARY_KEYS = (
    "title", "instance_guid", "state", "reported_state", "status_reason", "computer", "partition",
    "software_release", "software_type", "shared", "parameters", "connection_parameters",
)


def cfg_option(func: F) -> F:
    """``--cfg FILE``: the client configuration file."""
    return click.option("--cfg", metavar="FILE", help=CLIENT_CFG_HELP)(func)


def format_option(func: F) -> F:
    """``--format table|json``."""
    return click.option(
        "--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True,
        help="Output for people (table) or for scripts (json).",
    )(func)


def open_client(cfg: str | None) -> MasterClient:
    """A client of the master named by the configuration (a ConfigurationError if it is wrong)."""
    return client_from(load_client_config(cfg))


def load_client_config(cfg: str | None) -> ClientConfig:
    """The client configuration `--cfg` (or the environment, or the default file) names."""
    return client_config(read_config(cfg, client=True))


def client_from(config: ClientConfig) -> MasterClient:
    """A client of the master `config` names, trusting its CA file, with its identity."""
    return connect(config.master_url, key_file=config.key_file, cert_file=config.cert_file,
                   ca_file=config.ca_file, api_token=config.api_token)


def decode_underscore(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Parameters with a JSON ``_`` value decoded and merged in (as SlapOS shows them)."""
    parameters = dict(parameters or {})
    raw = parameters.get("_")
    if not isinstance(raw, str):
        return parameters
    try:
        decoded = json.loads(raw)
    except ValueError:
        return parameters
    if not isinstance(decoded, dict):
        parameters["_"] = decoded
        return parameters
    del parameters["_"]
    return {**parameters, **decoded}


def read_instance(answer: Any) -> InstanceDocument:
    """The master's answer about one instance (a MalformedDocument if it is not one)."""
    return parse_instance(answer, "the master's instance document")


def read_tree(answer: Any) -> TreeEntry:
    """One entry of the master's list of instance trees."""
    return parse_tree_entry(answer, "the master's instance tree entry")


def is_allocated(doc: InstanceDocument | TreeEntry) -> bool:
    """Whether the master found the instance a partition (or a host, for a shared one)."""
    return doc.compute_partition_id is not None


def summary(doc: InstanceDocument) -> dict[str, Any]:
    """What `request` and `info` show of an instance document, in `SUMMARY_KEYS` order."""
    return {
        "title": doc.title,
        "instance_guid": doc.instance_guid,
        "state": doc.state,
        "reported_state": doc.reported_state,
        "status_reason": doc.status_reason,
        "computer": doc.computer_guid,
        "partition": doc.compute_partition_id,
        "software_release": doc.software_release_uri,
        "software_type": doc.software_type,
        "shared": doc.shared,
        "parameters": decode_underscore(doc.parameters),
        "connection_parameters": decode_underscore(doc.connection_parameters),
    }


def where(doc: InstanceDocument | TreeEntry) -> str:
    """``slappart0 on COMP-1``, or a dash while the instance waits for a partition."""
    if not is_allocated(doc):
        return "-"
    return f"{doc.compute_partition_id} on {doc.computer_guid}"
