import os
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


@pytest.mark.parametrize("args, refused", [
    (["--listen-host", "0.0.0.0"], "--listen-host: the bridge sets mitmproxy's listen_host itself, from "
                                   "JUPYTER_PROXY_IP_OR_NAME"),
    (["--listen-h=0.0.0.0"], "--listen-h: "), (["--listen-port", "9"], "--listen-port: "),
    (["-p", "9"], "-p: the bridge sets mitmproxy's listen_port itself, from JUPYTER_PROXY_PORT"),
    (["-p9"], "-p9: "), (["-qp", "9"], "-qp: "), (["-m", "regular"], "-m: "), (["--mode=regular"], "--mode: "),
    (["-mregular"], "-mregular: "), (["--set", "listen_host=0.0.0.0"], "--set listen_host: "),
    (["--set=listen_port=9"], "--set listen_port: "), (["--set", "mode=regular"], "--set mode: "),
    (["-w", "x", "--set", "flow_detail=2", "-q", "--modify-body", "/a/b", "~u", "-x"], None),
])
def test_mitmproxys_listen_options_are_refused_with_the_bridges_setting(args, refused):
    if refused is None:
        launch.own_options(args)
        return
    with pytest.raises(ValueError) as e:
        launch.own_options(args)
    assert str(e.value).startswith(refused) and str(e.value).endswith("leave it out."), e.value


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


# Issue 16: one name, one class; one base for every refusal a user reads.
ENTRY_POINTS = {"main", "run"}  # each subcommand's own, by convention


def test_no_class_or_function_name_is_defined_twice_in_the_package():
    import ast
    seen: dict[str, list[str]] = {}
    for file in sorted((ROOT / "addon").rglob("*.py")):
        for node in ast.parse(file.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                seen.setdefault(node.name, []).append(str(file.relative_to(ROOT)))
    twice = {name: files for name, files in seen.items() if len(files) > 1 and name not in ENTRY_POINTS}
    assert twice == {}


def test_every_refusal_a_user_reads_is_a_bridge_error_with_its_fix():
    from addon.commands import check, login, servers
    from addon.core import errors, lifecycle, route
    for refusal in (route.Refused, servers.CommandFailed, check.Failed, login.Stop, lifecycle.StartFailed,
                    errors.SettingError):
        assert issubclass(refusal, errors.BridgeError), refusal
    failed = check.Failed("The hub is away.", "Start it.")
    assert (failed.message, failed.fix, str(failed)) == ("The hub is away.", "Start it.", "The hub is away. Start it.")
    with pytest.raises(ValueError, match="is not a port"):  # a setting's refusal is still a ValueError
        settings.resolve({**{o.name: o.default for o in settings.OPTIONS}, "jupyter_server_ip_or_name": "h",
                          "jupyter_username": "a", "jupyter_server_port": "x"}, {})


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1 0 100 0 0 10 0
   1: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 2 1 0 100 0 0 10 0
   2: 0500000A:1F42 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1003        0 3 1 0 100 0 0 10 0
   3: 0100007F:1F43 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1004        0 4 1 0 100 0 0 10 0
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1005        0 5
   1: 0000000000000000FFFF00000100007F:1F44 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1006        0 6
"""


@pytest.mark.parametrize("table, port, bind, uids", [
    (TCP, 8000, "127.0.0.1", {1001}),  # loopback
    (TCP, 8001, "127.0.0.1", {1002}),  # every address
    (TCP, 8002, "127.0.0.1", set()),  # another address: the IDE does not go there
    (TCP, 8002, "10.0.0.5", {1003}),  # ...unless the bridge listens there
    (TCP, 8003, "127.0.0.1", set()),  # a connection, not a listener
    (TCP6, 8000, "127.0.0.1", {1005}),  # ::1, where 'localhost' may go
    (TCP6, 8004, "127.0.0.1", {1006}),  # ::ffff:127.0.0.1
])
def test_listeners_on_the_bridges_port_from_proc_net_tcp(table, port, bind, uids):
    assert launch.listeners(table, port, bind) == uids


def test_another_users_listener_is_warned_about_and_ones_own_or_none_is_not(tmp_path):
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.0.0.5", jupyter_username="alice")
    s = settings.resolve(values, {})
    table = tmp_path / "tcp"
    table.write_text(TCP.replace(" 1001 ", f" {os.getuid() + 1} "))
    (warning,) = launch.squatter_warning(s, "127.0.0.1", [table, tmp_path / "absent"])
    assert f"uid {os.getuid() + 1}) has a process listening on port 8000" in warning and "--new-local-token" in warning
    table.write_text(TCP.replace(" 1001 ", f" {os.getuid()} "))
    assert launch.squatter_warning(s, "127.0.0.1", [table]) == []
    assert launch.squatter_warning(s, "127.0.0.1", [tmp_path / "absent"]) == []  # not Linux: nothing said
