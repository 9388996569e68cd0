"""What a node's toolchain installs from the package index (`node.toolchain`).

Shared by both sides: the node builds its toolchain with it, and ``slapos master packages fetch
--toolchain`` fills the master's package index with it (and its dependencies), for nodes that
reach only their master.
"""
from __future__ import annotations

REQUIREMENTS = ("zc.buildout>=6,<7", "zc.recipe.egg>=2.0", "requests>=2.31", "jinja2>=3.1", "jsonschema>=4.17",
                "setuptools>=61")
