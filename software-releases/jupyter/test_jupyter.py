"""jupyter end to end on the real node: JupyterLab from pinned wheels, a generated token kept out of
the command line and of every file other users could read; a real client creates a notebook
through the REST API and runs a cell through a kernel's websocket; the server moves to a new
port with the same token, the notebook survives stop/start, and nothing is left after destroy."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import subprocess
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import websocket

from tests.support.node import NodeEnv, free_port, node_with_software
from tests.support.releases import default_type_schemas, instance_profile

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
SOFTWARE_URL = str(HERE / "software.cfg")
TITLE = "lab"
NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
MAX_PASSES = 3  # a server still starting when the promises' grace ends is ready at the next pass
MAX_MESSAGES = 200


@pytest.fixture(scope="module")
def env() -> Iterator[NodeEnv]:
    """One node for the module; jupyter supplied and built once."""
    with node_with_software(SOFTWARE_URL, partitions=1) as node:
        yield node


def request(env: NodeEnv, state: str = "started", **parameters: str) -> dict:
    return env.client.request_instance(TITLE, SOFTWARE_URL, parameters=parameters, state=state)


def deploy(env: NodeEnv) -> dict:
    """Run instance passes until the instance is started (its promise passes)."""
    for _ in range(MAX_PASSES):
        env.instance(check=False)
        doc = env.info(TITLE)
        if doc["status_reason"] == "started":
            return doc
    raise AssertionError(f"{TITLE} not started after {MAX_PASSES} passes: {doc['status_reason']!r}")


def api(base: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """A call of Jupyter's REST API: (status, decoded JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    call = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                  headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(call, timeout=30) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, None


def run_cell(base: str, token: str, kernel_id: str, code: str) -> str:
    """Execute `code` in the kernel through its websocket channel; the stdout it printed."""
    address = base.replace("http://", "ws://", 1) + f"/api/kernels/{kernel_id}/channels"
    connection = websocket.create_connection(address, header=[f"Authorization: token {token}"], timeout=60)
    msg_id = uuid.uuid4().hex
    try:
        connection.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        # The reply (shell channel) may overtake the output (iopub): done when both the reply and
        # the kernel's "idle" status, sent after the request's last output, have come.
        printed, replied, idle = [], False, False
        for _ in range(MAX_MESSAGES):
            message = json.loads(connection.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream" and content["name"] == "stdout":
                printed.append(content["text"])
            elif kind == "execute_reply":
                assert content["status"] == "ok", content
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            if replied and idle:
                return "".join(printed)
        raise AssertionError(f"no execute_reply and idle status among {MAX_MESSAGES} messages")
    finally:
        connection.close()


def start_kernel(base: str, token: str) -> str:
    status, kernel = api(base, "POST", "/api/kernels", token, {"name": "python3"})
    assert status == 201, status
    return kernel["id"]


def probe_wheel(directory: Path) -> Path:
    """A tiny pure-Python wheel (``import partita_probe``), for ``%pip install`` without an index."""
    files = {
        "partita_probe/__init__.py": "ANSWER = 42\n",
        "partita_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: partita-probe\nVersion: 1.0\n",
        "partita_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                             "Tag: py3-none-any\n",
    }
    record = ""
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(text.encode())}\n"
    files["partita_probe-1.0.dist-info/RECORD"] = record + "partita_probe-1.0.dist-info/RECORD,,\n"
    directory.mkdir(mode=0o755)
    path = directory / "partita_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    path.chmod(0o644)
    return path


def refused(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) != 0


def no_process_of(user: str) -> bool:
    return subprocess.run(["pgrep", "-u", user], capture_output=True, check=False).returncode == 1


def kernel_running(user: str) -> bool:
    found = subprocess.run(["pgrep", "-u", user, "-f", "ipykernel_launcher"], capture_output=True, check=False)
    return found.returncode == 0


def command_lines(user: str) -> list[bytes]:
    found = subprocess.run(["pgrep", "-u", user], capture_output=True, text=True, check=False).stdout.split()
    lines = []
    for pid in found:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
        except FileNotFoundError:  # exited meanwhile
            pass
    return lines


def files_holding(root: Path, secret: bytes) -> list[Path]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if not path.is_symlink() and path.is_file() and secret in path.read_bytes():
                found.append(path)
    return found


def test_lifecycle(env: NodeEnv) -> None:
    port = str(free_port())
    request(env, port=port)
    doc = deploy(env)
    url, token = doc["connection_parameters"]["url"], doc["connection_parameters"]["token"]
    address = f"127.0.{env.network}.1"
    base = f"http://{address}:{port}"
    assert url == f"{base}/lab?token={token}" and len(token) >= 32
    with urllib.request.urlopen(url, timeout=30) as page:  # what a browser opens
        assert page.status == 200 and b"JupyterLab" in page.read()

    # a wrong token, or none, is refused
    assert api(base, "GET", "/api/contents", "wrong")[0] == 403
    assert api(base, "GET", "/api/contents", "")[0] == 403

    # a notebook in the notebook directory, and a cell run by a kernel
    status, created = api(base, "PUT", "/api/contents/hello.ipynb", token,
                          {"type": "notebook", "format": "json", "content": NOTEBOOK})
    assert status == 201 and created["path"] == "hello.ipynb"
    partition = env.partition_path(doc["compute_partition_id"])
    notebook = partition / "srv" / "notebooks" / "hello.ipynb"
    assert json.loads(notebook.read_text())["nbformat"] == 4
    kernel = start_kernel(base, token)
    assert run_cell(base, token, kernel, "print(6*7)") == "42\n"
    assert run_cell(base, token, kernel, "import os; print(os.environ['HOME'])") == f"{partition}/srv/home\n"
    wheels = probe_wheel(env.root / "wheels").parent  # %pip install: into the partition, then importable
    run_cell(base, token, kernel, f"%pip install --no-index --find-links {wheels} partita-probe")
    assert run_cell(base, token, kernel, "import partita_probe; print(partita_probe.__file__)") \
        == f"{partition}/srv/python/partita_probe/__init__.py\n"

    # the token: never on a command line, only in files no other user reads
    user = partition.owner()
    assert not any(token.encode() in line for line in command_lines(user))
    config = partition / "etc" / "jupyter" / "jupyter_server_config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    holding = files_holding(partition, token.encode())
    assert config in holding
    for path in holding:
        assert not path.stat().st_mode & 0o007, path
    assert not files_holding(env.software_directory(SOFTWARE_URL), token.encode())

    # a new port: the same token, the old port closed
    new_port = str(free_port())
    request(env, port=new_port)
    doc = deploy(env)
    new_base = f"http://{address}:{new_port}"
    assert doc["connection_parameters"] == {"url": f"{new_base}/lab?token={token}", "token": token}
    assert refused(address, int(port))
    assert api(new_base, "GET", "/api/contents/hello.ipynb", token)[0] == 200

    # stopped with a kernel running: no process of the partition's user is left
    start_kernel(new_base, token)
    assert kernel_running(user)
    request(env, "stopped", port=new_port)
    env.instance()
    assert env.info(TITLE)["reported_state"] == "stopped"
    assert refused(address, int(new_port)) and no_process_of(user)

    # started again: the notebook and the token are kept
    request(env, port=new_port)
    doc = deploy(env)
    assert doc["connection_parameters"]["token"] == token
    status, content = api(new_base, "GET", "/api/contents/hello.ipynb", token)
    assert status == 200 and content["type"] == "notebook"
    kernel = start_kernel(new_base, token)
    assert run_cell(new_base, token, kernel, "print(6*7)") == "42\n" and kernel_running(user)

    # destroyed (a kernel running): the partition is freed and empty, nothing of its user runs
    env.client.request_instance(TITLE, SOFTWARE_URL, state="destroyed")
    env.report()
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]
    assert no_process_of(user)
    assert refused(address, int(new_port))


def test_descriptor_and_schemas_match_the_profile() -> None:
    request_schema, response_schema = default_type_schemas(HERE)
    profile = instance_profile(HERE)
    assert str(request_schema["properties"]["port"]["default"]) == profile["slap-configuration"]["configuration.port"]
    assert sorted(response_schema["properties"]) == sorted(k for k in profile["publish"] if k != "recipe")
    jsonschema.validate({"port": 9999}, request_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"port": 0}, request_schema)
    jsonschema.validate({"url": "http://127.0.1.1:8888/lab?token=abc", "token": "abc"}, response_schema)
