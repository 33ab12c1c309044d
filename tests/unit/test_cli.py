"""addon/commands/cli.py, the one entry point of `jupyterhub-bridge` and `./run.sh`: which module runs a word,
help, --version and the words it refuses (issue 20)."""

import ast
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from addon.commands import cli
from addon.commands import login
from addon.core import invocation
from addon.core import options

ROOT = Path(__file__).resolve().parents[2]
# The only strings in addon/ that may say ./run.sh: its definition, and what only a checkout has (cli).
CHECKOUT_TEXTS = {
    ("addon/core/invocation.py", "./run.sh"),
    ("addon/commands/cli.py", cli.FOOTER[cli.COMMAND]),
    ("addon/commands/cli.py", "' needs the repository checkout (devhub, Node.js): run './run.sh "),
}


@pytest.mark.parametrize("argv, module, args", [
    ([], "launch", ["dump"]),
    (["--set", "flow_detail=2"], "launch", ["dump", "--set", "flow_detail=2"]),
    (["web", "--set", "web_port=9"], "launch", ["web", "--set", "web_port=9"]),
    (["check", "--set", "x=1"], "check", ["--set", "x=1"]),
    (["login", "https://hub/"], "login", ["login", "https://hub/"]),
    (["logout"], "login", ["logout"]),
    (["servers", "--json"], "servers", ["servers", "--json"]),
    (["start", "gpu"], "servers", ["start", "gpu"]),
    (["stop"], "servers", ["stop"]),
    (["open"], "open", []),
])
def test_each_word_runs_its_module_with_the_arguments_its_main_takes(argv, module, args):
    assert cli.target(argv) == (module, args)


@pytest.mark.parametrize("argv", [["tset"], ["demo"], ["help"], ["Check"]])
def test_a_word_that_is_no_subcommand_has_no_module(argv):
    assert cli.target(argv) is None


@pytest.mark.parametrize("module", sorted({m for m, _, _ in cli.SUBCOMMANDS.values()}))
def test_every_module_of_the_table_is_there(module):
    assert importlib.util.find_spec(f"addon.commands.{module}") is not None


@pytest.mark.parametrize("word", ["help", "-h", "--help"])
def test_help_lists_every_subcommand_and_every_setting(word, capsys):
    assert cli.main([word]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: jupyterhub-bridge [SUBCOMMAND]") and options.help_text() in out
    for w in [*cli.SUBCOMMANDS, *cli.CHECKOUT_ONLY]:
        assert f"\n  {w or '(none)'} " in out
    assert "run them there with ./run.sh" in out and "PYTHON=" not in out


def test_run_sh_s_help_names_run_sh_and_its_python(capsys):
    assert cli.main(["help"], cli.RUN_SH) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ./run.sh [SUBCOMMAND]") and "PYTHON=" in out


def test_version_is_the_checkout_s(capsys):
    assert cli.main(["--version"]) == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out == f"jupyterhub-bridge {version}\n"


@pytest.mark.parametrize("word", ["demo", "test", "bench"])
def test_what_needs_the_checkout_says_so_in_one_line_and_exits_2(word, capsys):
    assert cli.main([word, "-q"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: '{word}' needs the repository checkout (devhub, Node.js): run " \
                                 f"'./run.sh {word}' there.\n"


def test_a_typo_prints_the_usage_and_exits_2(capsys):
    assert cli.main(["tset"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: unknown subcommand 'tset'.\nusage: jupyterhub-bridge")


def test_the_pin_is_written_once_in_requirements_txt():
    """pyproject.toml reads its dependencies from requirements.txt (setuptools skips its comment lines)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dependencies" in project["project"]["dynamic"] and "dependencies" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    assert project["project"]["scripts"] == {"jupyterhub-bridge": "addon.commands.cli:main"}



def test_help_into_a_reader_that_stops_early_is_no_traceback():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone, as `| head -1` goes: every write fails with EPIPE
    r = subprocess.run([sys.executable, "-m", "addon.commands.cli", "help"], cwd=ROOT, stdout=write_end,
                       stderr=subprocess.PIPE, timeout=30)
    os.close(write_end)
    assert r.returncode == 0 and b"Traceback" not in r.stderr and b"BrokenPipe" not in r.stderr


def test_login_refuses_browser_with_a_password_on_standard_input(capsys):
    """--browser signs in on the hub's page: a password on stdin has nowhere to go (its message used to say the
    hub took no password)."""
    with pytest.raises(SystemExit) as stopped:
        login.arguments(["https://hub.example/", "--browser", "--password-stdin"])
    assert stopped.value.code == 2
    assert "--browser signs in on the hub's own page (a password or single sign-on there)" in capsys.readouterr().err
    assert login.arguments(["https://hub.example/", "--browser", "--token-stdin"]).token_stdin  # its fallback


def test_a_checkout_s_messages_say_run_sh():
    assert invocation.RUN == "./run.sh" and invocation.CHECKOUT == ROOT


def strings(module: Path) -> list[str]:
    """The string literals of a module, f-strings' parts included; not its docstrings, which are read in the source
    (open --help, which prints its docstring whole, names RUN there)."""
    tree = ast.parse(module.read_text())
    bodies = [n.body for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                                ast.AsyncFunctionDef))]
    docstrings = {id(body[0].value) for body in bodies if body and isinstance(body[0], ast.Expr)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_messages_name_the_command_through_run_not_run_sh():
    """An installed package has no ./run.sh: a message that says what to run takes invocation.RUN."""
    found = {(str(module.relative_to(ROOT)), text) for module in sorted((ROOT / "addon").rglob("*.py"))
             for text in strings(module) if "./run.sh" in text}
    assert found == CHECKOUT_TEXTS
