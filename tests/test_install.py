"""Installed as an admin installs it: the wheel built from this tree, in a fresh venv in a folder
outside the checkout, with no checkout on the path — then the first hour of a new programme.

Offline and quick: the wheel is built by setuptools' own PEP 517 hook (the test venv has it), and
the fresh venv borrows the dependencies already installed in the test venv through a .pth line
(the wheel itself goes in with pip --no-deps --no-index).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOW = "2027-01-04T08:00:00+00:00"


def _sh(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(bin folder of a fresh venv holding only the wheel, environment without the checkout)."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    # symlinks=False: the package's links to templates/ and the examples become the files themselves
    shutil.copytree(REPO / "rmdaemon", src / "rmdaemon", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RMDAEMON_CONFIG", "VIRTUAL_ENV")}
    built = _sh(sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_wheel({str(root)!r}))",
                cwd=src, env=env)
    assert built.returncode == 0, built.stderr
    wheel = root / built.stdout.strip().splitlines()[-1]
    venv = root / "venv"
    assert _sh(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=root, env=env).returncode == 0
    python = venv / "bin" / "python"
    site = Path(_sh(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=root, env=env).stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")  # after its own packages
    done = _sh(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel),
               cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    return venv / "bin", env


def test_the_wheel_carries_its_templates_and_runs_a_programme_from_rmdaemon_init(installed, tmp_path):
    bin_dir, env = installed
    where = _sh(str(bin_dir / "python"), "-c", "import rmdaemon; print(rmdaemon.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(bin_dir.parent)), where.stdout + where.stderr  # the wheel, not the checkout
    rmdaemon = str(bin_dir / "rmdaemon")
    assert _sh(rmdaemon, "--version", cwd=tmp_path, env=env).stdout.startswith("rmdaemon 0.")
    made = _sh(rmdaemon, "init", "prog", cwd=tmp_path, env=env)
    assert made.returncode == 0 and "wrote prog/rmdaemon.toml" in made.stdout, made.stderr
    prog = tmp_path / "prog"
    checked = _sh(rmdaemon, "check", cwd=prog, env=env)  # ./rmdaemon.toml by default
    assert checked.returncode == 0 and ": OK — 8 pairs" in checked.stdout, checked.stdout + checked.stderr
    dry = _sh(rmdaemon, "run", "--dry-run", "--now", NOW, cwd=prog, env=env)
    assert dry.returncode == 0 and "kickoff would be sent to" in dry.stdout and " sent to" not in dry.stdout.replace("would be sent", "")
    assert not list((prog / "var" / "outbox" / "new").iterdir())
    ran = _sh(rmdaemon, "run", "--once", "--now", NOW, cwd=prog, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert len(list((prog / "var" / "outbox" / "new").iterdir())) == 14  # a kickoff to each of 7 active pairs' people
    status = _sh(rmdaemon, "status", "--now", NOW, cwd=prog, env=env)
    assert status.returncode == 0 and "Aisha Khan" in status.stdout and "awaiting consent" in status.stdout


def test_a_template_typo_in_an_installed_copy_is_exit_2_with_file_and_line(installed, tmp_path):
    bin_dir, env = installed
    rmdaemon = str(bin_dir / "rmdaemon")
    assert _sh(rmdaemon, "init", "prog", "--templates", cwd=tmp_path, env=env).returncode == 0
    agenda = tmp_path / "prog" / "templates" / "agenda.txt"
    agenda.write_text(agenda.read_text().replace("Hello {{ person.first_name }}", "Hello {{ mentor_frist_name }}"))
    config = str(tmp_path / "prog" / "rmdaemon.toml")
    checked = _sh(rmdaemon, "check", "--config", config, cwd=tmp_path, env=env)  # --config after the command
    assert checked.returncode == 2
    assert f"{agenda}: line 3: 'mentor_frist_name' is not a variable of agenda.txt" in checked.stdout
    ran = _sh(rmdaemon, "--config", config, "run", "--once", "--now", NOW, cwd=tmp_path, env=env)
    assert ran.returncode == 2 and "mentor_frist_name" in ran.stderr and "Traceback" not in ran.stderr
    assert not list((tmp_path / "prog" / "var" / "outbox" / "new").iterdir())  # nothing sent
