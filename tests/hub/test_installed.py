"""Issue 20: the bridge installed as a tool. The wheel built from the checkout, installed into a fresh venv (as
`pip install .`, `pipx` or `uv tool install` do), runs as `jupyterhub-bridge` from another folder, with no
PYTHONPATH, no checkout on sys.path and no stored login, and serves a kernel of the devhub hub."""

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from bridge_process import Bridge
from bridge_process import free_port
from bridge_process import hub_env
from kernel_client import execute
from websockets.sync.client import connect as ws_connect

from addon.core import options

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "requirements.txt", "README.md", "addon")  # what `pip install .` needs from a clone
INSTALL_TIMEOUT = 300  # seconds; mitmproxy and its dependencies come from pip's cache or the package index


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from a copy of the checkout's sources (the build leaves nothing here)."""
    work = tmp_path_factory.mktemp("build")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, work / "src" / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (work / "src").mkdir(exist_ok=True)
            shutil.copy(ROOT / name, work / "src" / name)
    pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(work / "src"))
    return next((work / "dist").glob("jupyterhub_bridge-*.whl"))


@pytest.fixture(scope="module")
def command(wheel, tmp_path_factory) -> Path:
    """`jupyterhub-bridge` in a fresh venv of .venv's Python that holds the wheel and its dependencies only."""
    venv = tmp_path_factory.mktemp("tool") / "venv"
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "venv", str(venv)], check=True, timeout=120)
    pip(str(venv / "bin" / "python"), "install", str(wheel))
    return venv / "bin" / "jupyterhub-bridge"


def pip(python: str, *args: str) -> None:
    r = subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                       capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=clean_environ())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def clean_environ() -> dict[str, str]:
    """The user's shell: no PYTHONPATH, no venv, none of the bridge's settings."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("JUPYTER")}


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> Path:
    """Another folder, holding a project of the user's own with a package named `addon` that must not be run."""
    folder = tmp_path_factory.mktemp("elsewhere")
    (folder / "addon" / "commands").mkdir(parents=True)
    (folder / "addon" / "__init__.py").write_text("raise SystemExit('the current folder was imported')\n")
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config")  # an empty config folder: no stored login is read


@pytest.fixture(scope="module")
def run(command, elsewhere, home):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=60, cwd=elsewhere,
                              env={**clean_environ(), "JUPYTERHUB_BRIDGE_HOME": str(home)})
    return run


def test_the_wheel_holds_the_addon_package_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "addon/main.py" in names and "addon/commands/cli.py" in names and "addon/hub/api.py" in names
    assert {n.split("/")[0] for n in names} == {"addon", wheel.name.split("-py3")[0] + ".dist-info"}


def test_help_lists_every_subcommand_and_every_setting(run, monkeypatch):
    installed = [dataclasses.replace(o, help=o.help.replace("./run.sh", "jupyterhub-bridge")) for o in options.OPTIONS]
    monkeypatch.setattr(options, "OPTIONS", installed)  # installed, the settings' help names jupyterhub-bridge
    r = run("help")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("usage: jupyterhub-bridge [SUBCOMMAND]") and options.help_text() in r.stdout


def test_check_help_explains_the_check(run):
    r = run("check", "--help")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("usage: ") and "check" in r.stdout.splitlines()[0] and "settings:" not in r.stdout


def test_a_typo_prints_the_usage_and_exits_2(run):
    r = run("tset")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("error: unknown subcommand 'tset'.\nusage: jupyterhub-bridge")


def test_version_comes_from_the_installed_package(run, wheel):
    r = run("--version")
    assert (r.returncode, r.stdout) == (0, f"jupyterhub-bridge {wheel.name.split('-')[1]}\n")


@pytest.mark.parametrize("word", ["demo", "test", "bench"])
def test_what_needs_the_checkout_says_so_in_one_line(run, word):
    r = run(word)
    assert (r.returncode, r.stdout) == (2, "") and len(r.stderr.splitlines()) == 1 and "./run.sh" in r.stderr


def test_a_fix_names_the_installed_command(run):
    """No ./run.sh beside the installed package: what to run is `jupyterhub-bridge ...` (this fails before any
    connection: no hub token)."""
    r = run("servers", "--set", "jupyter_server_ip_or_name=127.0.0.1", "--set", "jupyter_username=alice")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.endswith(" Run jupyterhub-bridge login.\n") and "./run.sh" not in r.stderr


class InstalledBridge(Bridge):
    """bridge_process.Bridge (its waiting, banner token and stop), started as the installed command."""

    def __init__(self, command: Path, workdir: Path, cwd: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = workdir / f"installed-bridge-{self.port}.log"
        self.web = False
        self.env = {**clean_environ(), "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1", "JUPYTER_PROXY_PORT": str(self.port),
                    "PYTHONUNBUFFERED": "1", **env}
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen([str(command)], env=self.env, cwd=cwd, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def test_the_installed_bridge_serves_a_kernel_of_the_hub(command, elsewhere, home, hub, tmp_path):
    env = {**hub_env(hub), "JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"], "JUPYTERHUB_BRIDGE_HOME": str(home)}
    bridge = InstalledBridge(command, tmp_path, elsewhere, env)
    try:
        bridge.wait_listening()
        auth = {"Authorization": f"token {bridge.token}"}  # the bridge's own token; it sends the hub token on
        with httpx.Client(base_url=bridge.url, headers=auth, timeout=120) as c:
            name = f"t-{uuid.uuid4().hex[:8]}.ipynb"
            r = c.post("/api/sessions", json={"path": name, "name": name, "type": "notebook",
                                              "kernel": {"name": "python3"}})
            assert r.status_code == 201, r.text
            kernel = r.json()["kernel"]["id"]
            with ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels", additional_headers=auth,
                            open_timeout=30) as ws:
                out, err, result = execute(ws, "import os; print(os.environ['JUPYTERHUB_USER']); 6*7")
            assert (out, result) == ("alice\n", "42"), err
            assert c.delete(f"/api/kernels/{kernel}").status_code == 204
    finally:
        bridge.stop()
