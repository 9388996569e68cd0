"""SLAP XML adapter: the form-encoded endpoints the real slapos.core 1.26 client and node call.

``reference/slap-protocol.md`` §2.4 lists them. Each route parses its form (`forms`), calls the
service layer in one transaction, and serializes views (`encode`, then `marshal.dumps`); there are
no business rules here.

Answers: xml_marshaller documents (``application/xml``) or one plain-text line. Errors: every
`PartitaError` becomes its HTTP status with a one-line text body; a request still waiting for a
partition or a host is stored and answered 408 with its status (the client then says the master is
provisioning it). An ``Authorization: X-SlapPartition`` header must name an existing partition, the
same as the form's on calls that carry one (400 otherwise).

getFullComputerInformation is cached per process (`computer_cache`): the encoded answer is kept per
computer with the computer's generation, which every change shown in that answer increments; after
a change, only the partitions whose stored values changed are encoded again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from sqlalchemy.orm import Session

from partita.master.api.context import caller, database, heard_from, partition_from_header, settings
from partita.master.api.context import quota as context_quota
from partita.master.api.slap_xml import encode, forms
from partita.master.api.slap_xml.computer_cache import ComputerCache
from partita.master.api.slap_xml.marshal import dumps
from partita.master.api.authentication import AUTHORITY
from partita.master.services import (
    access, certificates, computer_views, computers, instances, lifecycle, release_schemas, software_names, supplies,
    views,
)
from partita.master.services.identity import Caller
from partita.master.services.validation import check_reference_characters, clean_reference
from partita.slap.errors import BadAuthorization, NotFound, PartitaError, ValidationError
from partita.slap.states import BuildState, InstanceState, ReportedState, parse_supply_state

blueprint = Blueprint("slap_xml", __name__)

XML_TYPE = "application/xml"
TEXT_TYPE = "text/plain; charset=utf-8"
CACHE_KEY = "partita.slap_xml.computer_cache"
CACHE_SIZE = 256


# --------------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------------

@blueprint.errorhandler(PartitaError)
def _partita_error(error: PartitaError) -> Response:
    status = error.status if 400 <= error.status < 600 else 500
    return _text(" ".join(str(error).split()) or error.code, status)


def _text(body: str, status: int = 200) -> Response:
    return Response(body + "\n", status=status, content_type=TEXT_TYPE)


def _xml(obj: Any) -> Response:
    return Response(dumps(obj), content_type=XML_TYPE)


def _fields() -> forms.Fields:
    return request.args if request.method == "GET" else request.form


def _max_bytes() -> int:
    return settings().max_body_bytes


def _write(work: Callable[[Session], Any]) -> Any:
    return database().run_write(work)


def _header_mismatch(named: tuple[str, str]) -> BadAuthorization:
    return BadAuthorization(f"No partition matching the authorization header: ({named[0]} / {named[1]})")


def _claimed(computer: str | None, partition: str | None) -> None:
    """Refuse a header naming another partition than the form's fields."""
    named = partition_from_header()
    if named is None:
        return
    if (computer is not None and computer != named[0]) or (partition is not None and partition != named[1]):
        raise _header_mismatch(named)


def _check_header(session: Session) -> None:
    """The partition the Authorization header names must exist."""
    named = partition_from_header()
    if named is None:
        return
    try:
        computers.get_partition(session, *named)
    except NotFound:
        raise _header_mismatch(named) from None


def _partition_fields(computer_field: str = "computer_id",
                      partition_field: str = "computer_partition_id") -> tuple[str, str]:
    fields = _fields()
    computer = clean_reference(forms.required(fields, computer_field), computer_field)
    partition = clean_reference(forms.required(fields, partition_field), partition_field)
    _claimed(computer, partition)
    return computer, partition


Work = Callable[[Session, Any], str]


def _on_partition(parse: Callable[[forms.Fields], Work]) -> Callable[[], Response]:
    """A POST acting on the instance of the form's partition.

    `parse` reads the other fields (before any transaction) and gives the work to do on the
    instance, which returns the answer text.
    """
    def view() -> Response:
        computer, partition = _partition_fields()
        work = parse(_fields())

        def transaction(session: Session) -> str:
            _check_header(session)
            return work(session, lifecycle.instance_on(session, caller(computer, partition), computer, partition))
        return _text(_write(transaction))
    return view


def _target(session: Session, host: Any, slave_reference: str | None) -> Any:
    """The instance itself, or the shared instance it hosts named `slave_reference`."""
    return host if slave_reference is None else lifecycle.hosted_shared(session, host, slave_reference)


# --------------------------------------------------------------------------------------------
# Computers: what a node reads and formats
# --------------------------------------------------------------------------------------------

@blueprint.get("/getHateoasUrl")
def get_hateoas_url() -> Response:
    """Where the HATEOAS reads are: the real client then needs no master_rest_url."""
    url = request.host_url.rstrip("/") + url_for("hateoas.root")
    return Response(url, 200, content_type="text/plain; charset=utf-8")  # no newline: it is used as is


def _computer_cache() -> ComputerCache:
    cache = current_app.extensions.get(CACHE_KEY)
    if cache is None:
        cache = current_app.extensions.setdefault(CACHE_KEY, ComputerCache(CACHE_SIZE))
    return cache


def _full_computer(reference: str) -> bytes:
    cache = _computer_cache()
    who = caller()
    with database().read() as session:
        computer = computers.find_computer(session, reference)
        if computer is None:
            if settings().mode == "proxy" and reference == settings().computer_id:
                return dumps(encode.empty_computer(reference))
            raise NotFound(f"unknown computer {reference!r}")
        access.check_computer(session, who, computer)
        key = (computer.id, computer.generation)
        body = cache.answer(reference, key)
        source = computer_views.computer_source(session, computer) if body is None else None
    heard_from(reference)  # slapgrid's every pass: the node's heartbeat
    return body if source is None else cache.assemble(key, source)


@blueprint.get("/getFullComputerInformation")
@blueprint.get("/getComputerInformation")
def get_full_computer_information() -> Response:
    return Response(_full_computer(forms.required(_fields(), "computer_id")), content_type=XML_TYPE)


@blueprint.post("/loadComputerConfigurationFromXML")
def load_computer_configuration() -> Response:
    config = forms.computer_configuration(_fields(), _max_bytes())
    who = caller()
    _write(lambda session: computers.format_computer(
        session, who, config.reference, config.partitions, config.address, config.netmask))
    return _text("done")


def _known_computer() -> str:
    reference = forms.required(_fields(), "computer_id")
    who = caller()
    with database().read() as session:
        access.check_computer(session, who, computers.get_computer(session, reference))
    return reference


@blueprint.post("/useComputer")
def use_computer() -> Response:
    _known_computer()
    return _text("OK")


@blueprint.post("/computerBang")
def computer_bang() -> Response:
    _known_computer()
    return _xml("")


# --------------------------------------------------------------------------------------------
# Software releases: supply and build reports
# --------------------------------------------------------------------------------------------

@blueprint.post("/supplySupply")
def supply_supply() -> Response:
    fields = _fields()
    url, computer = forms.required(fields, "url"), forms.required(fields, "computer_id")
    state = parse_supply_state(forms.required(fields, "state"))
    who = caller()
    _write(lambda session: supplies.supply(session, who, computer, url, state))
    return _text(f"Supplied {url!r} to be {state.value}")


def _build_report(state: BuildState) -> Callable[[], Response]:
    def view() -> Response:
        fields = _fields()
        url, computer = forms.required(fields, "url"), forms.required(fields, "computer_id")
        log = forms.text(fields, "error_log") if state == BuildState.ERROR else ""
        _write(lambda session: supplies.report_build(session, caller(), computer, url, state, log))
        return _text("OK")
    return view


for _path, _state in (("buildingSoftwareRelease", BuildState.BUILDING),
                      ("availableSoftwareRelease", BuildState.AVAILABLE),
                      ("softwareReleaseError", BuildState.ERROR),
                      ("destroyedSoftwareRelease", BuildState.DESTROYED)):
    blueprint.add_url_rule(f"/{_path}", _path, _build_report(_state), methods=["POST"])


@blueprint.get("/getSoftwareReleaseListFromSoftwareProduct")
def software_release_list_from_product() -> Response:
    """``product.NAME`` for SlapOS's client: the URL published (or shipped) under NAME, else []."""
    name = request.args.get("software_product_reference")
    if not name:
        return _xml([])
    with database().read() as session:
        try:
            return _xml([software_names.lookup(session, name).url])
        except ValidationError:
            return _xml([])


# --------------------------------------------------------------------------------------------
# Instances: requests from users and partitions
# --------------------------------------------------------------------------------------------

def _requester(form: forms.RequestForm) -> Caller:
    for name, value in (("computer_id", form.computer_id), ("computer_partition_id", form.partition_id)):
        if value is not None:
            check_reference_characters(value, name)
    _claimed(form.computer_id, form.partition_id)
    return caller(form.computer_id, form.partition_id)


@blueprint.post("/requestComputerPartition")
def request_computer_partition() -> Response:
    form = forms.request_form(_fields(), _max_bytes())
    who = _requester(form)
    release_schemas.prepare(database(), form.spec.software_release)  # outside the transaction

    def transaction(session: Session) -> views.InstanceView | None:
        _check_header(session)
        instance = instances.request_instance(session, who, form.spec, context_quota())
        return None if instance is None else views.instance_view(session, instance)

    view = _write(transaction)
    server_url = request.url_root
    spec = form.spec
    if view is None or (view.partition is None and view.requested_state == InstanceState.DESTROYED.value):
        return _xml(encode.destroyed_instance(spec.software_release, spec.software_type or "default", server_url))
    if view.partition is None:
        return _text(f"Instance {view.title!r} is not ready: {view.status}", 408)
    return _xml(encode.requested_instance(view, server_url))


@blueprint.get("/registerComputerPartition")
def register_computer_partition() -> Response:
    computer, reference = _partition_fields("computer_reference", "computer_partition_reference")
    who = caller(computer, reference)
    with database().read() as session:
        _check_header(session)
        partition = _reachable_partition(session, who, computer, reference)
        instance = partition.instance
        view = None if instance is None else views.instance_view(session, instance)
    return _xml(encode.partition_object(computer, reference, view))


def _reachable_partition(session: Session, who: Caller, computer: str, reference: str) -> Any:
    """The partition, if `who` may reach it: its instance's rules, or the computer's when free."""
    partition = computers.get_partition(session, computer, reference)
    if partition.instance is not None:
        access.check_instance(session, who, partition.instance)
    else:
        access.check_computer(session, who, partition.computer)
    return partition


@blueprint.get("/getComputerPartitionCertificate")
def get_computer_partition_certificate() -> Response:
    """The partition's key and certificate (empty strings on the proxy, as slapproxy answers).

    SlapOS's node expects the master to make the key and the same answer on every pass; only the
    computer itself (or the partition) gets it, over its mutually authenticated connection."""
    computer, reference = _partition_fields()
    who = caller(computer, reference)
    if not settings().authentication:
        with database().read() as session:
            _check_header(session)
            computers.get_partition(session, computer, reference)
        return _xml({"certificate": "", "key": ""})
    authority = current_app.extensions[AUTHORITY]

    def transaction(session: Session) -> tuple[str, str]:
        partition = _reachable_partition(session, who, computer, reference)
        return certificates.partition_key_and_certificate(session, authority, partition.computer, reference)
    key, certificate = _write(transaction)
    return _xml({"certificate": certificate, "key": key})


@blueprint.get("/getHostingSubscriptionIpList")
def get_hosting_subscription_ip_list() -> Response:
    """The addresses of every partition of the caller's instance tree (the node's firewall)."""
    computer, reference = _partition_fields()
    with database().read() as session:
        _check_header(session)
        instance = lifecycle.instance_on(session, caller(computer, reference), computer, reference)
        return _xml(instances.tree_addresses(session, instance))


@blueprint.get("/getComputerPartitionStatus")
def get_computer_partition_status() -> Response:
    computer, reference = _partition_fields()
    who = caller(computer, reference)
    with database().read() as session:
        _check_header(session)
        instance = _reachable_partition(session, who, computer, reference).instance
        status = "free" if instance is None else views.instance_view(session, instance).status
    return _xml(status)


# --------------------------------------------------------------------------------------------
# Instances: what the node and the instance itself report
# --------------------------------------------------------------------------------------------

def _reported(state: ReportedState) -> Callable[[forms.Fields], Work]:
    def parse(fields: forms.Fields) -> Work:
        def work(session: Session, instance: Any) -> str:
            lifecycle.report_state(session, instance, state)
            return "OK"
        return work
    return parse


blueprint.add_url_rule("/startedComputerPartition", "startedComputerPartition",
                       _on_partition(_reported(ReportedState.STARTED)), methods=["POST"])
blueprint.add_url_rule("/stoppedComputerPartition", "stoppedComputerPartition",
                       _on_partition(_reported(ReportedState.STOPPED)), methods=["POST"])


@blueprint.post("/destroyedComputerPartition")
def destroyed_computer_partition() -> Response:
    computer, partition = _partition_fields()

    def transaction(session: Session) -> None:
        _check_header(session)
        lifecycle.free_partition(session, caller(computer, partition), computer, partition)
    _write(transaction)
    return _text("OK")


def _software_instance_error(fields: forms.Fields) -> Work:
    slave_reference, log = forms.optional(fields, "slave_reference"), forms.text(fields, "error_log")

    def work(session: Session, instance: Any) -> str:
        target = _target(session, instance, slave_reference)
        lifecycle.report_state(session, target, ReportedState.ERROR, log)
        return "OK"
    return work


def _software_instance_bang(fields: forms.Fields) -> Work:
    message = forms.text(fields, "message")

    def work(session: Session, instance: Any) -> str:
        lifecycle.bang(session, instance, message)
        return "OK"
    return work


def _software_instance_rename(fields: forms.Fields) -> Work:
    new_name = forms.required(fields, "new_name")
    slave_reference = forms.optional(fields, "slave_reference")

    def work(session: Session, instance: Any) -> str:
        lifecycle.rename(session, _target(session, instance, slave_reference), new_name)
        return "done"
    return work


def _set_connection_xml(fields: forms.Fields) -> Work:
    connection = forms.string_parameters(
        forms.marshalled_dict(fields, "connection_xml", None, _max_bytes()), "connection_xml")
    slave_reference = forms.optional(fields, "slave_reference")

    def work(session: Session, instance: Any) -> str:
        lifecycle.set_connection_parameters(session, instance, connection, slave_reference)
        return "done"
    return work


def _related_instance_list(fields: forms.Fields) -> Work:
    """slapgrid's end of a successful pass: the titles the partition requested in it. Without the
    field nothing changes (an absent list is not an empty one)."""
    if forms.optional(fields, "instance_reference_xml") is None:
        return lambda session, instance: "done"
    titles = forms.marshalled(fields, "instance_reference_xml", _max_bytes())
    if not isinstance(titles, list) or not all(isinstance(title, str) for title in titles):
        raise ValidationError("instance_reference_xml must be a marshalled list of titles")

    def work(session: Session, instance: Any) -> str:
        lifecycle.forget_unrequested(session, instance, titles)
        return "done"
    return work


for _path, _work in (("softwareInstanceError", _software_instance_error),
                     ("softwareInstanceBang", _software_instance_bang),
                     ("softwareInstanceRename", _software_instance_rename),
                     ("setComputerPartitionConnectionXml", _set_connection_xml),
                     ("updateComputerPartitionRelatedInstanceList", _related_instance_list)):
    blueprint.add_url_rule(f"/{_path}", _path, _on_partition(_work), methods=["POST"])
