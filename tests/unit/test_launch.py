import subprocess
from pathlib import Path

import pytest

from addon.commands import launch
from addon.core import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args, found", [
    (["--set", "jupyter_username=bob", "--set", "flow_detail=2"], {"jupyter_username": "bob"}),
    (["--set=jupyter_server_port=443", "-w", "x"], {"jupyter_server_port": "443"}),
    (["--set", "jupyter_named_server=a=b"], {"jupyter_named_server": "a=b"}),
    (["--set"], {}),
    (["-s", "--set", "jupyter_username"], {}),
])
def test_set_overrides(args, found):
    assert launch.set_overrides(args) == found


def test_bind_address():
    assert launch.bind_address("localhost") == "127.0.0.1"
    assert launch.bind_address("::1") == "::1"


def test_banner_shows_the_local_token_once_and_never_the_hub_token():
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.0.0.5", jupyter_username="alice",
                  jupyterhub_api_token="hub-0123456789abcdef", jupyter_proxy_token="local-secret-0123")
    text = launch.banner(settings.resolve(values, {}))
    assert text.count("local-secret-0123") == 1
    assert "hub-0123456789abcdef" not in text and "…cdef" in text
    assert "paste into PyCharm: http://127.0.0.1:8000/?token=local-secret-0123" in text


def test_mitmproxy_gets_the_stream_threshold_in_bytes():
    """mitmweb's status bar shows `stream: NaNundefined` for "1m" and `stream: 2mb` for bytes."""
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.0.0.5", jupyter_username="alice", jupyter_proxy_stream_bodies="2m")
    args = launch.mitmproxy_args("mitmweb", settings.resolve(values, {}))
    assert "stream_large_bodies=2097152" in args


def test_the_runtime_venv_is_clean():
    """mitmproxy pins its dependencies tightly: nothing else may go into the bridge's own venv."""
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "pip", "check"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
