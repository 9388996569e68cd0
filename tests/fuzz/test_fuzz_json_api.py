"""Fuzzing the JSON API: every documented method, with valid, invalid and raw bodies.

Driven by the OpenAPI document the app serves (``/openapi.json``), through schemathesis over WSGI
(no socket). For each method, schemathesis generates bodies that match the method's schema
(positive) and bodies that violate it (negative); valid bodies often get the seeded catalog's
real guids, titles, computers and partitions instead of random strings, and some calls carry an
``X-SlapPartition`` Authorization header (a real partition, an unknown one, or a malformed one).
Schemathesis checks every answer: no 5xx, a documented status, the documented content type,
an answer matching the documented schema, and a 4xx for invalid data. Beyond that:

- every answer is strict JSON (RFC 8259: no ``NaN``/``Infinity``), an error is
  ``{"status", "type", "title", "code"}`` with its own status and a message;
- a rejected call (4xx) changes nothing: the rows, ``compute_node_state`` of both computers and
  ``instance_tree_list`` are as seeded;
- after an accepted call the catalog still reads back as valid documents, in both protocols (a
  value the JSON API accepts must not break what a node reads over SLAP XML).

`test_raw_bodies` sends what no schema generator sends: random bytes, JSON text with lone
surrogate escapes, numbers beyond a double, NUL, deep nesting, duplicate keys, a body over the
size limit, valid bodies with one field replaced by such a value, to documented and unknown
method names. `test_edge_values` is its deterministic floor: one value of each class JSON carries
but the catalog, PostgreSQL or the SLAP XML side cannot (lone surrogate, a number beyond a double,
a control character, a noncharacter) in every value position of a valid body of the methods that
store or look up strings.

Each example starts from the seeded catalog (`tests/fuzz/conftest.py`).
"""
from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, negative_data_rejection, response_schema_conformance,
    status_code_conformance,
)

from partita.master.api import openapi
from tests.fuzz.conftest import (
    COMPUTER, MAX_BODY_BYTES, NO_COMPUTER, OTHER_COMPUTER, OTHER_SR, SR, TRICKY_STRINGS, World,
    authorization, fuzz_settings, strict_json,
)

METHODS = openapi.documented_methods()
ERROR_CODES = {"BAD_REQUEST", "BAD_ENCODING", "INVALID", "BAD_AUTHORIZATION", "TOO_LARGE", "FORBIDDEN",
               "NOT_FOUND", "CONFLICT", "INVALID_TRANSITION", "METHOD_NOT_ALLOWED", "BAD_CONTENT_TYPE", "QUOTA", "BAD_SLA",
               # the binary cache (master.services.binary_cache)
               "NOT_A_BUILDER", "NOT_CACHED", "ALREADY_CACHED", "UPLOAD_IN_PROGRESS", "DIGEST_MISMATCH"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def schema(world: World) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", world.app)


# ---------------------------------------------------------------------------------------- strategies

def known_values(world: World) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per body field: values of the seeded catalog, and near misses or tricky values."""
    partitions = sorted({p for _, p in world.known_partitions()})
    generations = [doc["generation"] for key, doc in world.seed_state["json"].items()
                   if key.startswith("compute_node_state")]
    return {
        "instance_guid": (world.known_guids(), ["main", "SOFTINST-0000000000000000", ""]),
        "computer_guid": ([COMPUTER, COMPUTER, OTHER_COMPUTER], [NO_COMPUTER, "local_computer ", ".."]),
        "compute_partition_id": (partitions, ["slappart9", "../slappart0", ""]),
        "title": (world.known_titles() + ["new-one"], TRICKY_STRINGS),
        "software_release_uri": ([SR, SR, OTHER_SR, "https://example.invalid/new/software.cfg"], TRICKY_STRINGS),
        "shared_instance_guid": ([world.guids["route"], "route"], [world.guids["main"], "nothing", ""]),
        "software_type": (["default", "other"], TRICKY_STRINGS),
        "generation": (generations, [0, 2**62]),
        "sla_parameters": ([{}, {"computer_guid": COMPUTER}, {"computer_guid": OTHER_COMPUTER},
                            {"instance_guid": world.guids["main"]}],
                           [{"computer_guid": NO_COMPUTER}, {"computer_guid": None}, {"instance_guid": "nothing"}]),
        "timeout": ([0, 0.01], [1e308]),
    }


def with_known_values(data: st.DataObject, body: dict[str, Any],
                      known: dict[str, tuple[list[Any], list[Any]]]) -> dict[str, Any]:
    """`body` with fields set to values of the seeded catalog (all of them, or some, some tricky)."""
    how = data.draw(st.sampled_from(["as generated", "catalog values", "catalog values", "catalog values", "mixed"]),
                    label="fields")
    if how == "as generated":
        return body
    replaced = dict(body)
    for key in body:
        if key not in known:
            continue
        good, tricky = known[key]
        choice = "good" if how == "catalog values" else data.draw(
            st.sampled_from(["keep", "good", "good", "tricky"]), label=f"{key} from")
        if choice != "keep":
            replaced[key] = data.draw(st.sampled_from(good if choice == "good" else tricky), label=key)
    return replaced


# ---------------------------------------------------------------------------------------- checks

def check_answer(world: World, method: str | None, status: int, raw: bytes, why: str) -> Any:
    """What every answer must be; returns the parsed document."""
    assert status < 500, f"{why}: {status} {raw[:2000]!r}"
    try:
        document = strict_json(raw)
    except ValueError as error:
        raise AssertionError(f"{why}: the {status} answer is not strict JSON ({error}): {raw[:2000]!r}") from None
    if status >= 400:
        assert isinstance(document, dict) and set(document) == {"status", "type", "title", "code"}, (why, document)
        assert document["status"] == status and document["code"] in ERROR_CODES, (why, document)
        assert document["title"].strip() and "Traceback" not in document["title"], (why, document)
        world.assert_unchanged("json", f"{why} was rejected ({status} {document['code']}: {document['title'][:300]})")
    else:
        assert status == 200, (why, status, raw[:2000])
        if method is not None:
            openapi.validate_response(method, 200, document)
        world.assert_readable(why)
    return document


# ---------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("method", METHODS)
def test_documented_method(world: World, schema: Any, method: str) -> None:
    """Schemathesis' valid and invalid bodies for `method`: its checks, and ours."""
    operation = schema["/" + method]["POST"]
    cases = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                      operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    known = known_values(world)
    headers_strategy = authorization(world)

    @fuzz_settings(world.examples(sqlite=30, postgresql=12))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(cases, label="case")
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        if positive and isinstance(case.body, dict):
            case.body = with_known_values(data, case.body, known)
        headers = data.draw(headers_strategy, label="headers")
        world.restore()
        response = case.call(headers=headers)
        why = f"POST /{method} {json.dumps(case.body, default=repr)[:2000]} headers={headers}"
        # Ours first (5xx, a change on rejection, an unreadable catalog), then conformance to the document.
        check_answer(world, method, response.status_code, response.content, why)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


# Raw JSON text: what a schema generator never writes.
_NUMBER_TOKENS = ["0", "-0", "1", "-1", "1.5", "1e400", "-1e400", "1E-400", "123456789012345678901234567890",
                  "1" * 5000, "0.1e1", "01", "1.", ".5", "+1", "NaN", "Infinity", "-Infinity", "0x10"]
_STRING_TOKENS = ['""', '"x"', '"\\ud800"', '"\\udfff\\ud800"', '"a\\u0000b"', '"\\u0000"', '"\\\\"',
                  '"\x01raw control"', '"unterminated', '"\\x41"', '"\\uZZZZ"', '"é"', '"\\u00e9"',
                  '"../../etc/passwd"', '"/srv/../x/software.cfg"', '"slappart0"', '"local_computer"']
_LITERALS = ["true", "false", "null", "tru", "nul", "[]", "{}", "[", "]", "{", "}", ",", ":"]


def json_fragments() -> st.SearchStrategy[str]:
    """Text that is mostly JSON: nested arrays and objects of odd tokens, sometimes broken."""
    scalars = st.one_of(st.sampled_from(_NUMBER_TOKENS), st.sampled_from(_STRING_TOKENS),
                        st.sampled_from(_LITERALS),
                        st.text(max_size=20).map(json.dumps),
                        st.integers().map(str), st.floats(allow_nan=False).map(repr))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(st.sampled_from(_STRING_TOKENS + ['"title"', '"instance_guid"', '"a"']), inner),
                     max_size=5).map(lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"),
        ),
        max_leaves=12,
    )


def template_bodies(world: World) -> dict[str, dict[str, Any]]:
    """A valid body per method, on the seeded catalog."""
    main = world.guids["main"]
    return {
        "slapos.post.v0.software_instance": {"title": "main", "software_release_uri": SR, "software_type": "default",
                                             "parameters": {"a": "b"}, "state": "started",
                                             "sla_parameters": {"computer_guid": COMPUTER}},
        "slapos.put.v0.software_instance_connection_parameter": {"instance_guid": main,
                                                                 "connection_parameter_dict": {"url": "x"}},
        "slapos.put.v0.software_instance_reported_state": {"instance_guid": main, "reported_state": "error",
                                                           "status_message": "promise failed"},
        "slapos.put.v0.software_instance_error": {"instance_guid": main, "message": "buildout failed"},
        "slapos.put.v0.software_installation_error": {"computer_guid": COMPUTER, "software_release_uri": SR,
                                                      "message": "build failed"},
        "slapos.put.v0.software_installation_reported_state": {"computer_guid": COMPUTER, "software_release_uri": SR,
                                                               "reported_state": "error", "error_log": "log"},
        "slapos.put.v0.software_instance_bang": {"instance_guid": main, "message": "again"},
        "slapos.put.v0.software_instance_title": {"instance_guid": main, "title": "renamed"},
        "slapos.put.v0.compute_node_format": {"computer_guid": COMPUTER, "compute_partition_list": [
            {"partition_id": "slappart5", "ip_list": [{"ip-address": "10.0.0.6", "network-interface": "lo"}]}]},
        "slapos.post.v0.software_installation": {"computer_guid": COMPUTER, "software_release_uri": OTHER_SR,
                                                 "state": "destroyed"},
        "slapos.wait.v0.compute_node_change": {"computer_guid": COMPUTER, "generation": 0, "timeout": 0},
        "slapos.get.v0.compute_partition": {"computer_guid": COMPUTER, "compute_partition_id": "slappart0"},
    }


PLACEHOLDER = "\x00fuzz\x00"
# Values JSON can carry but the catalog (or the XML side) cannot: lone surrogates, numbers beyond a
# double, characters XML 1.0 cannot carry, NUL.
POISON = ['"\\ud800"', '"a\\udfffb"', '1e400', '-1e400', '1E+309', '"\\u001f"', '"\\u000b"', '"\\u001b[31m"',
          '"\\ufffe"', '"\\uffff"', '"\\u0000"', '"\\u0085"', '"\\u2028"', '"\\u007f"', '"\\ud83d\\ude00"',
          '123456789012345678901234567890', '-0', '1.0']


def raw_bodies(world: World, method: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, bytes]]:
    templates = template_bodies(world)

    def mutated_template(draw: Any, fragments: st.SearchStrategy[str]) -> tuple[str, bytes]:
        """A valid body with one value (or one key of a nested object) replaced by a fragment."""
        name = draw(st.sampled_from(sorted(templates)))
        body = json.loads(json.dumps(templates[name]))
        target = body
        key = draw(st.sampled_from(sorted(body)))
        if isinstance(body[key], dict) and body[key] and draw(st.booleans()):
            target, key = body[key], draw(st.sampled_from(sorted(body[key])))
        fragment = draw(fragments)
        if isinstance(target[key], dict) and draw(st.booleans()):  # a poisoned key
            target[key] = {PLACEHOLDER: "value"}
            fragment = fragment if fragment.startswith('"') else json.dumps(fragment)
        else:
            target[key] = PLACEHOLDER
        text = json.dumps(body).replace(json.dumps(PLACEHOLDER), fragment)
        return name, text.encode("utf-8", "surrogatepass")

    return st.one_of(
        st.tuples(method, st.binary(max_size=300)),
        st.tuples(method, json_fragments().map(lambda text: text.encode("utf-8", "surrogatepass"))),
        st.tuples(method, st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=10), lambda inner: st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10,
        ).map(lambda value: json.dumps(value).encode())),
        st.composite(lambda draw: mutated_template(draw, json_fragments()))(),
        st.composite(lambda draw: mutated_template(draw, st.sampled_from(POISON)))(),
        st.composite(lambda draw: mutated_template(draw, st.sampled_from(POISON)))(),
        st.tuples(method, st.sampled_from([
            b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"title": "a", "title": "b"}', b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b'{"a": "\xed\xa0\x80"}',
            b'"\\ud800"', b"{}" + b" " * (MAX_BODY_BYTES + 1), b'{"x": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}',
        ])),
    )


def test_raw_bodies(world: World) -> None:
    """Raw bytes and odd JSON text to documented and unknown methods: a clear 4xx, or a valid 200."""
    methods = st.one_of(st.sampled_from(METHODS), st.sampled_from([
        "slapos.get.v0.nothing", "slapos.", "slapos.post.v0.software_instance/../x", "slapos.get.v0.%00",
    ]))
    content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                     "application/json; charset=latin-1", ""])

    @fuzz_settings(world.examples(sqlite=200, postgresql=80))
    @given(call=raw_bodies(world, methods), content_type=content_types, headers=authorization(world))
    def run(call: tuple[str, bytes], content_type: str, headers: dict[str, str] | None) -> None:
        method, body = call
        world.restore()
        response = world.client.post(f"/{method}", data=body, content_type=content_type or None, headers=headers)
        why = f"POST /{method} {body[:2000]!r} content-type={content_type!r} headers={headers}"
        documented = method if method in METHODS else None
        document = check_answer(world, documented, response.status_code, response.data, why)
        if documented is None:
            assert response.status_code == 404, (why, document)
        elif response.status_code == 200:
            # The server took it: it must have been a body the documented schema allows.
            openapi.validate_request(method, strict_json(body) if body.strip() else {})

    run()


def test_get_is_refused(world: World) -> None:
    """GET on every method: 405 with a JSON error, nothing changed."""
    for method in METHODS:
        response = world.client.get(f"/{method}")
        assert response.status_code == 405, (method, response.status_code)
        check_answer(world, method, response.status_code, response.data, f"GET /{method}")


# One value of each class that JSON carries and the catalog, the database or the XML side cannot.
EDGE_VALUES = {"lone surrogate": '"\\ud800"', "number beyond a double": "1e400",
               "control character": '"\\u001b[31m"', "noncharacter": '"\\ufffe"'}


def edge_variants(body: Any, token: str) -> list[str]:
    """`body` as JSON text with one leaf value, or one key of an object, replaced by `token`."""
    variants: list[str] = []

    def walk(node: Any, replace: Any) -> None:
        if isinstance(node, dict):
            if node is not body:
                replace({PLACEHOLDER: "value", **node})
            for key, value in node.items():
                walk(value, lambda new, key=key, node=node: replace({**node, key: new}))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, lambda new, index=index, node=node: replace([*node[:index], new, *node[index + 1:]]))
        else:
            replace(PLACEHOLDER)

    def record(new_body: Any) -> None:
        key_token = token if token.startswith('"') else json.dumps(token)
        text = json.dumps(new_body)
        text = text.replace(json.dumps(PLACEHOLDER) + ": ", key_token + ": ").replace(json.dumps(PLACEHOLDER), token)
        variants.append(text)

    walk(body, record)
    return variants


def test_edge_values(world: World) -> None:
    """Every value position of valid bodies, with each edge value: a clean 4xx, or a 200 that reads back."""
    failures = []
    for method, body in sorted(template_bodies(world).items()):
        for kind, token in EDGE_VALUES.items():
            for text in edge_variants(body, token):
                world.restore()
                response = world.client.post(f"/{method}", data=text.encode("utf-8", "surrogatepass"),
                                             content_type="application/json")
                try:
                    check_answer(world, method, response.status_code, response.data, f"POST /{method} {text}")
                except AssertionError as error:
                    failures.append(f"[{kind}] {str(error)[:700]}")
    assert not failures, f"{len(failures)} calls failed:\n" + "\n".join(failures)
