"""The extractor of a guide's command blocks and its annotations."""
from __future__ import annotations

import pytest

from tests.docs.guide import GuideError, parse_annotation, shell_blocks

GUIDE = """# Title

```sh
echo one
echo two   # a comment
```

Output looks like this:

```console
$ echo one
one
```

```
plain
```

```text
text
```

<!-- guide: background -->

```sh
slapos proxy start
```

<!-- guide: not-run (what CI runs, it would run the tests inside the tests) -->
```bash
scripts/test
```

````sh
echo "```"
````
"""


def test_blocks_in_order_with_their_lines_and_annotations():
    blocks = shell_blocks(GUIDE)
    assert [(b.line, b.text, sorted(b.kinds)) for b in blocks] == [
        (3, "echo one\necho two   # a comment\n", []),
        (25, "slapos proxy start\n", ["background"]),
        (30, "scripts/test\n", ["not-run"]),
        (34, 'echo "```"\n', []),
    ]
    assert blocks[2].reason == "what CI runs, it would run the tests inside the tests"
    assert [b.runs for b in blocks] == [True, True, False, True]


def test_an_annotation_applies_only_to_the_block_right_after_it():
    blocks = shell_blocks("<!-- guide: as-user -->\n\nsome text\n\n```sh\nid\n```\n")
    assert blocks[0].kinds == frozenset()


def test_several_words():
    assert parse_annotation("background, as-user") == (frozenset({"background", "as-user"}), "")
    assert parse_annotation("not-run (a, b)") == (frozenset({"not-run"}), "a, b")


@pytest.mark.parametrize("body, message", [
    ("backgound", "unknown guide annotation 'backgound'"),
    ("not-run", "needs a reason"),
    ("not-run ()", "needs a reason"),
    ("background (why)", "only `not-run` takes a reason"),
    ("as-user, as-root", "either as-user or as-root"),
    ("", "empty guide annotation"),
])
def test_bad_annotations_are_one_readable_error(body: str, message: str):
    with pytest.raises(GuideError, match=message):
        shell_blocks(f"text\n<!-- guide: {body} -->\n```sh\nid\n```\n", "g.md")


def test_an_annotation_on_an_output_block_is_an_error():
    with pytest.raises(GuideError, match="g.md:2: a guide annotation before a block that is not a command"):
        shell_blocks("<!-- guide: background -->\n```console\n$ id\n```\n", "g.md")


def test_an_unclosed_block_is_an_error():
    with pytest.raises(GuideError, match="g.md:2: code block never closed"):
        shell_blocks("text\n```sh\nid\n", "g.md")
