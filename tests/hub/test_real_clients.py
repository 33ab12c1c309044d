"""The clients users really have, through the bridge holding the hub token: @jupyterlab/services in Node
(VS Code's way in) and JupyterLab in headless Chromium, both given only the printed connect URL."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def bridge(hub, start_bridge):
    return start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"]})


def node(script, *args, timeout=180):
    r = subprocess.run([shutil.which("node") or "node", str(CLIENTS / script), *args], cwd=CLIENTS,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_jupyterlab_services_in_node_runs_code(bridge):
    """@jupyterlab/services outside a browser puts the token in the WebSocket URL (appendToken)."""
    result = node("services.mjs", f"{bridge.url}/", bridge.token)
    assert result == {"stdout": "services alice\n", "status": "ok"}


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing (./run.sh test installs it as root)")
def test_jupyterlab_in_chromium_runs_a_cell(bridge, tmp_path):
    """A browser opens the connect URL: the bridge's cookie, the Lab page, a kernel, a cell's output."""
    result = node("lab.mjs", f"{bridge.url}/?token={bridge.token}", str(tmp_path / "lab.png"))
    assert result["output"] == "lab alice 42\n"
    assert re.match(rf"http://[0-9a-f]{{20}}\.localhost:{bridge.port}/user/alice/lab/", result["url"])  # its own name
    assert (tmp_path / "lab.png").stat().st_size > 10_000
