"""The package map holds: the import rules of docs/architecture.md (import-linter's contracts in
pyproject.toml), and the torch-free parts stay torch-free when imported."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_rules_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module", ["cnnlab.run", "cnnlab.scratch", "cnnlab.data", "cnnlab.training.progress"])
def test_torch_free_modules_import_without_torch(module):
    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, f"importing {module} imported torch"


def test_the_trainer_does_not_import_the_pictures():
    """The command line composes train -> summary -> report; the trainer itself draws nothing."""
    code = ("import sys, cnnlab.training.trainer, cnnlab.training.evaluation; "
            "sys.exit(any(m in sys.modules for m in ('matplotlib', 'pytorch_grad_cam', 'cnnlab.viz')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
