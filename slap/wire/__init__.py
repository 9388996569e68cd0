"""The documents that cross a process boundary, each written once: a frozen dataclass, the function
that renders it and the one that parses it.

===================  ===========================  ====================================  ==========================
module               contract                     produced by                           read by
===================  ===========================  ====================================  ==========================
`node_state`         ComputeNodeState (JSON API)  master (json_rpc_documents)           node (desired)
`instance`           InstanceDocument, TreeEntry  master (json_rpc_documents)           CLI, partita:request
                     NodeInstanceDocument         master, inside the node state         node
`instance_file`      instance.json                node (instance)                       partita:slapconfiguration
`connection`         [slap-connection] and tail   node (instance)                       partita:request, :publish,
                                                                                        :slapconfiguration
`promise_result`     a plugin's answer line       slap.promise (as the partition user)  node (promises)
===================  ===========================  ====================================  ==========================

Parsers refuse a document that does not follow its contract with a `MalformedDocument` (a
`slap.errors.ValidationError`) of one line naming the document and the field; each consumer turns it
into its own error (a NodeError, a buildout error, a CLI error line). Pure: no IO, nothing but the
standard library and `slap.states`/`slap.errors`. The JSON documents are held to
``master/api/openapi.yaml`` by ``tests/slap/test_wire.py``.
"""
