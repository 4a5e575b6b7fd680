"""The README's "Token classification with `word_ids()`" example, run as it is written: word labels aligned through
`word_ids()` train a tagger on the shipped model, and it prints the output that the README shows."""

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "### Token classification with `word_ids()`"

pytestmark = pytest.mark.usefixtures("one_thread")


def readme_example() -> str:
    """The first Python code block after the subsection's heading."""
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"README.md has no {HEADING!r}"
    block = re.search(r"```python\n(.*?)```", text[text.index(HEADING) :], re.DOTALL)
    assert block is not None, f"no Python code block after {HEADING!r}"
    return block.group(1)


def test_readme_token_classification_example_runs_and_prints_what_it_shows() -> None:
    code = readme_example()
    shown = [line.removeprefix("# ") for line in code.splitlines() if line.startswith("# [")]
    assert len(shown) == 1, "the example shows its printed output as one comment line"
    torch.manual_seed(0)
    namespace: dict = {"__name__": "readme_example"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"{README}:{HEADING}", "exec"), namespace)
    assert printed.getvalue().strip() == shown[0]
    # The labels sit where word_ids() puts the words; the collator pads them with -100 like the words.
    labels = namespace["batch"]["labels"].tolist()
    label2id = namespace["tagger"].config.label2id
    expected = [[label2id[tag] for tag in word_tags] for _, word_tags in namespace["train"]]
    assert labels == [row + [-100] * (6 - len(row)) for row in expected]
    assert namespace["batch"]["input_ids"].shape == (3, 6, 50)
    assert namespace["tokenizer"].is_fast
