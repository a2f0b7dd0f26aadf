"""What a user installs is enough: in a fresh virtual environment, ``pip install
'.[ml,serve]'`` and then ``loopline demo fraud`` (whatever a command imports at run time
is in the extras that command needs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_from_a_fresh_install_of_the_ml_and_serve_extras(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run([*pip, f"{ROOT}[ml,serve]"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    absent = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pytest"], capture_output=True
    )
    assert absent.returncode != 0, "the development tools are not in the user's install"
    run = tmp_path / "run"
    run.mkdir()
    demo = subprocess.run(
        [str(venv / "bin" / "loopline"), "demo", "fraud", "--customers", "500", "--json"],
        cwd=run, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    summary = json.loads(demo.stdout.strip().splitlines()[-1])
    assert summary["promoted"] is True
    assert summary["http_requests"] > 500
