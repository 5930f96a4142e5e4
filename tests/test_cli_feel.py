"""The command line as a newcomer meets it: help for every flag, suggestions for typos (one line,
exit 2), a header before the first step, and plain progress lines when the output is a log file."""

import argparse
import re
import subprocess
import sys

import pytest

from cnnlab.cli import build_parser, main


def all_parsers(parser, prefix="cnnlab"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, f"{prefix} {name}")


def test_every_flag_of_every_command_has_help():
    missing = [f"{name} {action.option_strings[0]}" for name, parser in all_parsers(build_parser())
               for action in parser._actions
               if action.option_strings and not action.help and action.dest != "help"]
    assert missing == []


@pytest.mark.parametrize("argv, expected", [
    ("trian lenet5", "invalid choice: 'trian': did you mean train?"),
    ("train lenet5 --lrr 0.1", "unknown option --lrr: did you mean --lr?"),
    ("train lenet5 --optimizer adam", "invalid choice: 'adam': did you mean adamw?"),
    ("viz camm run image.png", "invalid choice: 'camm': did you mean cam?"),
    ("train lenet5 --epochs ten", "argument --epochs: invalid int value: 'ten'"),
])
def test_typos_get_one_line_with_a_suggestion(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv.split())
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_train_prints_a_header_before_the_first_step_and_plain_progress_in_a_log(tmp_path):
    """stdout and stderr are pipes here, as in a log file: no bar, but a line every PLAIN_EVERY s."""
    code = ("import sys; from cnnlab.training.progress import EpochBar; EpochBar.PLAIN_EVERY = 0.0; "
            "from cnnlab.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "train", "lenet5", "--dataset", "cifar10", "--data-dir",
                             str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert "cifar10 not found" in result.stderr  # a bad data folder: refused before the header
    result = subprocess.run([sys.executable, "-c", code, "train", "lenet5", "--epochs", "1", "--device", "cpu",
                             "--out", str(tmp_path / "r")], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == (f"lenet5 (61,706 parameters) | digits: 1,437 train, 0 val, 360 test; images 1x8x8 -> "
                        f"1x32x32: resize 8x8 -> 32x32 (bilinear) | recipe lenet5-digits | cpu, fp32, 1 thread | "
                        f"run {tmp_path / 'r'}")
    steps = [line for line in lines if line.startswith("epoch 1/1  step ")]
    assert len(steps) >= 10 and re.fullmatch(r"epoch 1/1  step \d+/45( +[\d,]+ img/s)?  ETA \d+s", steps[-1])
    assert "\r" not in result.stderr  # no progress bar redraws in a log
