"""zc.buildout recipes of the compatibility tests' tiny offline software release.

Installed into the slapos.core 1.26.1 peer's virtual environment by the tests, so that the
``bin/buildout`` slapgrid bootstraps (which has that environment's site-packages on its path)
finds them without downloading anything. They talk to the master with the real `slap` library,
as the partition, like slapos.cookbook recipes do.

- ``write``: write ``content``, or the file ``copy-from``, to ``path`` (``mode``, octal); every
  ``@NAME@`` is replaced by the option ``replace-NAME``.
- ``configuration``: reads the partition's parameters and sets the options ``ipv4``, ``port``,
  ``foo``, ``request-child`` and ``python`` for the other parts to use.
- ``publish``: publishes ``{url, partition, echo-foo}`` (and ``child-url`` once the child
  ``child0``, requested when the parameter ``request-child`` is ``yes``, has published its
  ``url``), and a ``slave-url`` to every shared instance hosted here.
"""
import os
import sys

REPLACE_PREFIX = "replace-"


def _partition(options):
    """The real slap library's ComputerPartition for this partition."""
    from slapos import slap

    connection = slap.slap()
    connection.initializeConnection(
        options["server-url"], key_file=options.get("key-file") or None,
        cert_file=options.get("cert-file") or None, timeout=30)
    return connection.registerComputerPartition(options["computer-id"], options["partition-id"])


class Write:
    def __init__(self, buildout, name, options):
        self.options = options

    def install(self):
        options = self.options
        path = options["path"]
        if "copy-from" in options:
            with open(options["copy-from"]) as source:
                text = source.read()
        else:
            text = options.get("content", "").strip() + "\n"
        for key, value in options.items():
            if key.startswith(REPLACE_PREFIX):
                text = text.replace(f"@{key[len(REPLACE_PREFIX):]}@", value)
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        with open(path, "w") as target:
            target.write(text)
        os.chmod(path, int(options.get("mode", "0644"), 8))
        return [path]

    update = install


class Configuration:
    def __init__(self, buildout, name, options):
        parameters = _partition(options).getInstanceParameterDict()
        ipv4 = [ip for _, ip in parameters.get("ip_list", []) if ":" not in ip]
        options["ipv4"] = ipv4[0] if ipv4 else "127.0.0.1"
        options["port"] = str(parameters.get("port", "8080"))
        options["foo"] = str(parameters.get("foo", ""))
        options["request-child"] = str(parameters.get("request-child", "no"))
        options["python"] = sys.executable

    def install(self):
        return []

    update = install


class Publish:
    def __init__(self, buildout, name, options):
        self.options = options

    def install(self):
        from slapos.slap import ResourceNotReady

        options = self.options
        software_release = options["software-release-url"]
        partition = _partition(options)
        parameters = partition.getInstanceParameterDict()
        connection = {"url": options["url"], "partition": options["partition-id"],
                      "echo-foo": str(parameters.get("foo", ""))}
        if parameters.get("request-child") == "yes":
            child = partition.request(
                software_release, "default", "child0",
                partition_parameter_kw={"foo": "from-parent", "port": str(parameters.get("port", "8080"))})
            try:
                child_url = child.getConnectionParameterDict().get("url")
            except ResourceNotReady:
                child_url = None
            if child_url:
                connection["child-url"] = child_url
        partition.setConnectionDict(connection)
        for shared in parameters.get("slave_instance_list") or []:
            reference = shared["slave_reference"]
            partition.setConnectionDict({"slave-url": options["url"] + "_" + reference},
                                        slave_reference=reference)
        return []

    update = install
