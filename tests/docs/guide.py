"""The shell blocks of a guide (README.md, docs/*.md), as a test runs them.

A block is a fenced code block whose language is ``sh`` (or ``bash``, ``shell``): the commands a
reader types, in order. Blocks that show output (```` ```console ````, ```` ```text ````, or no
language) are not commands. A block runs as written unless an HTML comment on the line just
before its fence (blank lines allowed in between) says otherwise:

``<!-- guide: background -->``
    a foreground server (``slapos proxy start``, ``slapos node run``, ``slapos master start``):
    the runner starts it in the background, waits for its first line of output (the servers
    announce themselves once they listen) before the next block, and stops it at the end.
``<!-- guide: as-user -->`` / ``<!-- guide: as-root -->``
    the guide says to run this block as an ordinary user / as root, whoever runs the rest.
``<!-- guide: not-run (why) -->``
    a command that cannot run in a test (``scripts/test`` itself, what CI runs); the reason in
    parentheses is mandatory.

Several words are separated by commas: ``<!-- guide: background, as-user -->``. Keep them rare.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

COMMAND_LANGUAGES = frozenset({"sh", "bash", "shell"})
KINDS = frozenset({"background", "as-user", "as-root", "not-run"})
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
ANNOTATION = re.compile(r"^\s*<!--\s*guide:\s*(?P<body>.*?)\s*-->\s*$")
WORD = re.compile(r"^(?P<kind>[a-z-]+)(?:\s*\((?P<reason>[^)]*)\))?$")


class GuideError(Exception):
    """A guide this module cannot read: an unknown annotation, an unclosed block."""


@dataclass(frozen=True)
class Block:
    """One command block: `line` is the 1-based line of its opening fence."""
    line: int
    text: str
    kinds: frozenset[str] = frozenset()
    reason: str = ""

    @property
    def runs(self) -> bool:
        return "not-run" not in self.kinds


def shell_blocks(markdown: str, name: str = "<guide>") -> list[Block]:
    """The command blocks of `markdown`, in order, with their line numbers and annotations."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening["fence"]
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        if end == len(lines):
            raise GuideError(f"{name}:{index + 1}: code block never closed")
        if opening["info"].lower() in COMMAND_LANGUAGES:
            kinds, reason = _annotation(lines, index, name)
            body = "\n".join(lines[index + 1:end])
            blocks.append(Block(line=index + 1, text=body + "\n", kinds=kinds, reason=reason))
        elif _annotation(lines, index, name)[0]:
            raise GuideError(f"{name}:{index + 1}: a guide annotation before a block that is not a command block")
        index = end + 1
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _annotation(lines: list[str], fence_index: int, name: str) -> tuple[frozenset[str], str]:
    """The annotation on the last non-blank line before the fence, if any."""
    previous = fence_index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return frozenset(), ""
    match = ANNOTATION.match(lines[previous])
    if not match:
        return frozenset(), ""
    where = f"{name}:{previous + 1}"
    return parse_annotation(match["body"], where)


def parse_annotation(body: str, where: str = "<guide>") -> tuple[frozenset[str], str]:
    """``background, as-user`` → the kinds and the not-run reason; an unknown word is an error."""
    kinds: set[str] = set()
    reason = ""
    for word in _split_words(body):
        match = WORD.match(word)
        if not match or match["kind"] not in KINDS:
            raise GuideError(f"{where}: unknown guide annotation {word!r} (known: {', '.join(sorted(KINDS))})")
        kinds.add(match["kind"])
        if match["kind"] == "not-run":
            reason = (match["reason"] or "").strip()
            if not reason:
                raise GuideError(f"{where}: `not-run` needs a reason in parentheses")
        elif match["reason"] is not None:
            raise GuideError(f"{where}: only `not-run` takes a reason")
    if {"as-user", "as-root"} <= kinds:
        raise GuideError(f"{where}: a block runs either as-user or as-root")
    if not kinds:
        raise GuideError(f"{where}: empty guide annotation")
    return frozenset(kinds), reason


def _split_words(body: str) -> list[str]:
    """Commas separate words, except inside a not-run reason's parentheses."""
    words, depth, current = [], 0, ""
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            words.append(current.strip())
            current = ""
        else:
            current += char
    words.append(current.strip())
    return [word for word in words if word]
