"""Two nodes starting together on one machine build one toolchain, once (issue 11).

Two real processes call `ensure_toolchain` on the same fresh toolchain directory at the same
moment: the machine-wide lock (``<toolchain directory>/.lock``) lets one build it, from a private
copy of the sources (never in a shared tree); the other waits, then uses it. Both succeed.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from partita.node.toolchain import MARKER

PYTHON = "/usr/bin/python3.11"

# One node's start: count the builds it makes (in a file per process), then print the toolchain.
START = """
import sys
from pathlib import Path
from partita.node import toolchain

built = Path(sys.argv[2])
original = toolchain._build

def counting(*args, **kwargs):
    built.write_text("built\\n")
    return original(*args, **kwargs)

toolchain._build = counting
found = toolchain.ensure_toolchain(Path(sys.argv[1]), sys.argv[3], for_other_users=False)
print(found.directory)
"""


def test_two_nodes_starting_together_both_get_the_one_toolchain_built_once() -> None:
    with tempfile.TemporaryDirectory(prefix="pttc") as base:
        root = Path(base) / "toolchain"
        processes = [subprocess.Popen([sys.executable, "-c", START, str(root), str(Path(base) / f"built-{n}"), PYTHON],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for n in range(2)]
        outcomes = [process.communicate(timeout=900) for process in processes]
        for process, (out, err) in zip(processes, outcomes):
            assert process.returncode == 0, err[-3000:]
        directories = {out.strip() for out, _ in outcomes}
        assert len(directories) == 1, directories
        directory = Path(directories.pop())
        assert directory.parent == root and (directory / MARKER).is_file()
        assert sorted(path.name for path in Path(base).glob("built-*")) in (["built-0"], ["built-1"])
        check = subprocess.run([str(directory / "bin" / "python"), "-c", "import partita.recipes.publish, zc.buildout"],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
        assert [path.name for path in root.iterdir() if not path.name.startswith(".")] == [directory.name]
