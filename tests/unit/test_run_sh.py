"""run.sh itself: which words it runs in .venv through addon/commands/cli.py, help, and how it builds its venvs (in
a copy of the project whose requirements install nothing and whose entry point only says where it ran, so that a
test builds a venv in seconds)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from addon.commands import cli
from addon.core import options

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 180  # seconds for one venv with nothing to install; the machine may be busy
STUB = "import sys\nprint(__name__, sys.argv[1:], 'in', sys.prefix)\n"


def run_sh(*args, root=ROOT, timeout=60, **env):
    # cwd: `python -m addon.x` looks in the working directory before PYTHONPATH
    return subprocess.run([str(root / "run.sh"), *args], capture_output=True, text=True, timeout=timeout,
                          env={**clean_environ(), **env}, cwd=root)


def clean_environ():
    return {k: v for k, v in os.environ.items() if k not in ("PYTHON", "PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture
def project(tmp_path):
    """run.sh in an empty project: requirements that install nothing, an entry point (cli) that prints."""
    (tmp_path / "run.sh").write_bytes((ROOT / "run.sh").read_bytes())
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "requirements.txt").write_text("# nothing: the test builds a venv only\n")
    (tmp_path / "addon" / "commands").mkdir(parents=True)
    (tmp_path / "addon" / "__init__.py").write_text("")
    (tmp_path / "addon" / "commands" / "__init__.py").write_text("")
    (tmp_path / "addon" / "commands" / "cli.py").write_text(STUB)
    return tmp_path


def test_an_unknown_subcommand_prints_the_usage_and_exits_2():
    r = run_sh("tset")
    assert r.returncode == 2
    assert "unknown subcommand 'tset'" in r.stderr and "usage: ./run.sh" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("word", ["help", "-h", "--help"])
def test_help_prints_the_subcommands_and_every_setting(word):
    r = run_sh(word)
    assert r.returncode == 0, r.stderr
    assert "usage: ./run.sh" in r.stdout and "  check " in r.stdout and "PYTHON=" in r.stdout
    assert options.help_text() in r.stdout


def test_check_help_prints_the_checks_help_instead_of_checking():
    r = run_sh("check", "--help", JUPYTER_SERVER_IP_OR_NAME="")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("usage: ./run.sh check") and "settings:" not in r.stdout  # no check ran


def test_two_first_runs_at_once_build_the_venv_once(project):
    """`./run.sh` in one terminal and `./run.sh check` in another: one builds, the other waits and uses it."""
    runs = [subprocess.Popen([str(project / "run.sh"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=clean_environ(), cwd=project) for args in ([], ["check", "-x"])]
    outputs = [p.communicate(timeout=2 * BUILD_TIMEOUT) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    assert outputs[0][0] == f"__main__ [] in {project / '.venv'}\n"
    assert outputs[1][0] == f"__main__ ['check', '-x'] in {project / '.venv'}\n"
    assert sum(err.count("setting up .venv") for _, err in outputs) == 1, outputs


def test_a_venv_whose_python_disappeared_or_changed_is_rebuilt(project, tmp_path_factory):
    python = tmp_path_factory.mktemp("pyenv") / "python3"  # a Python that can go away, as a pyenv version can
    python.symlink_to(Path(sys.executable).resolve())  # the test venv's Python: 3.12 or newer
    first = run_sh("check", root=project, timeout=BUILD_TIMEOUT, PYTHON=str(python))
    assert first.returncode == 0 and "setting up .venv" in first.stderr, first.stderr
    assert run_sh("check", root=project).stderr == ""  # built: the next run goes straight in

    python.unlink()
    gone = run_sh("check", root=project, timeout=BUILD_TIMEOUT)
    assert gone.returncode == 0 and "setting up .venv" in gone.stderr, gone.stderr

    stamp = project / ".venv" / ".stamp"
    requirements_hash, _ = stamp.read_text().split(" ", 1)
    stamp.write_text(f"{requirements_hash} 3.12.0 /removed/python3.12\n")  # built by a Python since replaced
    changed = run_sh("check", root=project, timeout=BUILD_TIMEOUT)
    assert changed.returncode == 0 and "setting up .venv" in changed.stderr, changed.stderr
    assert changed.stdout == f"__main__ ['check'] in {project / '.venv'}\n"


def test_every_subcommand_runs_the_entry_point_in_the_venv_and_help_needs_none(project):
    """Each word of cli.py runs `python -m addon.commands.cli <the same arguments>` in .venv; help, --version and a
    typo are answered by any Python 3.12, before anything is installed (a typo on a fresh clone is no long wait)."""
    for word in ("help", "-h", "--help", "--version", "tset"):
        r = run_sh(word, "a b", root=project)
        assert (r.returncode, r.stderr) == (0, ""), r.stderr
        assert r.stdout.startswith(f"__main__ [{word!r}, 'a b'] in ") and str(project) not in r.stdout
    assert not (project / ".venv").exists()
    for word in [*(w for w in cli.SUBCOMMANDS if w), "--set"]:
        r = run_sh(word, "a b", root=project, timeout=BUILD_TIMEOUT)
        assert (r.returncode, r.stdout) == (0, f"__main__ [{word!r}, 'a b'] in {project / '.venv'}\n"), r.stderr


def without_a_python(tmp_path, **env):
    """run.sh copied to an empty project, on a PATH without Python 3.12+ and without pyenv."""
    for name in ("run.sh", "requirements.txt"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / "run.sh").chmod(0o755)
    return subprocess.run([str(tmp_path / "run.sh")], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=60)


def test_run_sh_says_what_to_install_without_a_suitable_python(tmp_path):
    r = without_a_python(tmp_path)
    assert r.returncode != 0
    assert "no Python 3.12 or newer found" in r.stderr and "install" in r.stderr
    assert not (tmp_path / ".venv").exists()


def test_run_sh_refuses_a_python_given_that_is_too_old(tmp_path):
    r = without_a_python(tmp_path, PYTHON="/bin/false")
    assert r.returncode != 0
    assert "PYTHON=/bin/false is not a Python 3.12 or newer" in r.stderr
