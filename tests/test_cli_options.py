"""The options every inference command shares: `--threads` and `--no-progress` (every progress bar, the weight
loading's included)."""

from __future__ import annotations

import pytest
import torch

from modeling_elmo.cli import _process_options, build_parser
from modeling_elmo.cli import main as elmo
from modeling_elmo.pretrained import DEFAULT_MODEL

TEXT = "The play was a hit .\nThey play football on Sunday .\n"


@pytest.mark.parametrize("command", ["embed", "neighbors", "perplexity", "evaluate"])
def test_threads_apply_to_the_command_and_are_restored(command, tmp_path):
    arguments = {
        "embed": ["embed", "in.txt", "out.hdf5"],
        "neighbors": ["neighbors", "--corpus", "in.txt", "--query", "a play", "--word", "play"],
        "perplexity": ["perplexity", "in.txt"],
        "evaluate": ["evaluate", "--output-dir", str(tmp_path)],
    }[command]
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    args = build_parser().parse_args([*arguments, "--threads", str(wanted), "--no-progress"])
    with _process_options(args):
        during = torch.get_num_threads()
    assert (during, torch.get_num_threads()) == (wanted, before)


@pytest.mark.parametrize("threads", ["0", "-1", "two"])
def test_threads_must_be_a_positive_integer(threads, capsys):
    with pytest.raises(SystemExit) as exit_status:
        build_parser().parse_args(["embed", "in.txt", "out.hdf5", "--threads", threads])
    assert exit_status.value.code == 2 and "--threads: must be a positive integer" in capsys.readouterr().err


def test_no_progress_silences_every_bar(tmp_path, capfd):
    source = tmp_path / "in.txt"
    source.write_text(TEXT, encoding="utf-8")
    command = ["perplexity", str(source), "--model", DEFAULT_MODEL, "--tokenized", "--threads", "1"]
    assert elmo(command) == 0
    noisy = capfd.readouterr().err
    assert "Loading weights" in noisy and "perplexity: 100%" in noisy  # the bars that --no-progress must silence
    assert elmo([*command, "--no-progress"]) == 0
    quiet = capfd.readouterr()
    assert quiet.err == "" and "average perplexity" in quiet.out
