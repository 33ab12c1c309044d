import os
import re
from pathlib import Path

import pytest
import trustme

from addon.core import options
from addon.core import settings

SETTINGS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def values(**over):
    base = {o.name: o.default for o in settings.OPTIONS}
    base.update(jupyter_server_ip_or_name="10.1.2.3", jupyter_username="alice")
    base.update(over)
    return base


def resolve(**over):
    """Settings from these values and an empty environment: the developer's shell does not count."""
    return settings.resolve(values(**over), {})


def test_defaults_follow_the_seed():
    s = resolve()
    assert (s.listen_host, s.listen_port, s.server_port) == ("localhost", 8000, 8000)
    assert s.tls_name == "jupyterhub"  # dialling an IP
    assert s.ca_file is None  # ./my_sslca.cert left at its default and absent: system trust store
    assert s.prefix == "/user/alice/"
    assert s.connect_url == "http://127.0.0.1:8000/"
    assert (s.stream_bodies, s.web_flows, s.web_ws_messages) == (1024 * 1024, 500, 100)


def test_tls_name_is_the_dialled_name_or_the_setting():
    assert resolve(jupyter_server_ip_or_name="hub.example.org").tls_name == "hub.example.org"
    assert resolve(jupyter_server_name="jh.cluster").tls_name == "jh.cluster"
    assert resolve(jupyter_server_ip_or_name="[::1]").dial_url == "https://[::1]:8000/"


@pytest.mark.parametrize("user, server, base, prefix", [
    ("alice", "", "/", "/user/alice/"),
    ("alice", "gpu", "/", "/user/alice/gpu/"),
    ("a b@x~y", "", "/", "/user/a%20b@x~y/"),
    ("ünï", "", "/", "/user/%C3%BCn%C3%AF/"),
    ("alice", "", "jupyter", "/jupyter/user/alice/"),
    ("alice", "/gpu/", "/jupyter/", "/jupyter/user/alice/gpu/"),
])
def test_prefix_escapes_like_jupyterhub(user, server, base, prefix):
    assert resolve(jupyter_username=user, jupyter_named_server=server, jupyterhub_base_url=base).prefix == prefix


@pytest.mark.parametrize("over, words", [
    ({"jupyter_server_ip_or_name": ""}, "Sign in once: ./run.sh login https://<your hub>/ . To set it by hand "
                                        "instead: JUPYTER_SERVER_IP_OR_NAME"),
    ({"jupyter_username": " "}, "JUPYTER_USERNAME is not set"),
    ({"jupyter_server_port": "0"}, "JUPYTER_SERVER_PORT='0' is not a port"),
    ({"jupyter_proxy_port": "80a"}, "JUPYTER_PROXY_PORT='80a' is not a port"),
    ({"jupyter_server_port": "65536"}, "is not a port"),
    ({"jupyter_cluster_ca_cert": "/nonexistent/ca.pem"}, "no such file"),
    ({"jupyterhub_base_url": "/a/../b"}, "must not contain"),
    ({"jupyterhub_base_url": "/a/%2e%2e/b"}, "must not contain"),
    ({"jupyter_proxy_stream_bodies": "1x"}, "JUPYTER_PROXY_STREAM_BODIES='1x' is not a size: use bytes, or a number"),
    ({"jupyter_proxy_stream_bodies": "0"}, "JUPYTER_PROXY_STREAM_BODIES='0' is not a size"),
    ({"jupyter_proxy_stream_bodies": "-1m"}, "is not a size"),
    ({"jupyter_proxy_web_flows": "lots"}, "JUPYTER_PROXY_WEB_FLOWS='lots' is not a number of at least 1."),
    ({"jupyter_proxy_web_ws_messages": "0"}, "JUPYTER_PROXY_WEB_WS_MESSAGES='0' is not a number of at least 1."),
])
def test_bad_settings_say_what_to_do(over, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        resolve(**over)


@pytest.mark.parametrize("raw, use", [
    # Issue 28 (field note 49): under user/, users/ and services/ the proxy routes to a server whose owner sees
    # what is sent there; hub/ before the last segment is a page of the hub.
    ("/user/alice/", "/"), ("user", "/"), ("/jupyter/user/alice/", "/jupyter/"), ("/users/", "/"),
    ("/services/x/", "/"), ("/a/services/", "/a/"), ("/User/alice/", "/"), ("/%75ser/alice/", "/"),
    ("/hub/login/", "/"), ("/jupyter/hub/api/", "/jupyter/"), ("/x/user/alice/hub/", "/x/"),
])
def test_a_base_url_inside_a_server_is_refused_with_the_one_to_use(raw, use):
    with pytest.raises(ValueError) as refused:
        resolve(jupyterhub_base_url=raw)
    said = str(refused.value)
    assert said.startswith(f"JUPYTERHUB_BASE_URL={raw!r} is inside /") and "\n" not in said
    assert said.endswith(f"use the hub's own URL, https://<your hub>{use} (base URL {use}).")


@pytest.mark.parametrize("raw, base", [
    ("/", "/"), ("", "/"), ("/jupyter/", "/jupyter/"), ("jupyter", "/jupyter/"), ("/hub/", "/hub/"),
    ("/a/hub", "/a/hub/"), ("/userland/", "/userland/"), ("/my-users/", "/my-users/"), ("/jupyterhub/", "/jupyterhub/"),
])
def test_base_urls_of_hubs_are_taken(raw, base):
    assert resolve(jupyterhub_base_url=raw).base_url == base


@pytest.mark.parametrize("raw, size", [
    ("1m", 1048576), ("512k", 524288), ("20M", 20971520), ("1mb", 1048576), ("4096", 4096), (" 2g ", 2 << 30),
])
def test_stream_bodies_in_bytes_as_mitmproxy_reads_sizes(raw, size):
    assert resolve(jupyter_proxy_stream_bodies=raw).stream_bodies == size


def test_ca_file_checks(tmp_path, monkeypatch):
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="not a PEM certificate"):
        resolve(jupyter_cluster_ca_cert=str(not_pem))
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="no PEM certificate in it"):  # refused at start, not by the first handshake
        resolve(jupyter_cluster_ca_cert=str(pem))
    trustme.CA().cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve(jupyter_cluster_ca_cert="~/ca.pem").ca_file == str(pem)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_sslca.cert").write_text(pem.read_text())
    assert resolve().ca_file == str(tmp_path / "my_sslca.cert")


def test_environment_gives_the_defaults_and_overrides_win():
    env = {"JUPYTER_SERVER_IP_OR_NAME": "hub", "JUPYTER_USERNAME": "bob", "JUPYTER_PROXY_PORT": "9000"}
    s = settings.from_environment(env, {"jupyter_username": "carol"})
    assert (s.server_host, s.username, s.listen_port) == ("hub", "carol", 9000)


def test_secrets_come_from_the_environment_given_not_the_shell(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "from-the-shell")
    monkeypatch.setenv("JUPYTER_PROXY_TOKEN", "from-the-shell")
    from_env = values(jupyterhub_api_token=None, jupyter_proxy_token=None)  # as mitmproxy's options give them
    s = settings.resolve(from_env, {})
    assert s.hub_token is None and s.local_secret not in ("from-the-shell", "")  # random per run
    s = settings.resolve(from_env, {"JUPYTERHUB_API_TOKEN": "given", "JUPYTER_PROXY_TOKEN": "local"})
    assert (s.hub_token, s.local_secret) == ("given", "local")
    assert os.environ["JUPYTERHUB_API_TOKEN"] == "from-the-shell"


def test_own_names_and_hub_origins():
    s = resolve(jupyter_proxy_ip_or_name="mybox", jupyter_server_port="443")
    assert s.own_authorities == {"localhost:8000", "127.0.0.1:8000", "[::1]:8000", "mybox:8000"}
    assert "https://jupyterhub" in s.hub_origins and "https://10.1.2.3:443" in s.hub_origins


def test_every_option_is_in_the_settings_page_table_as_generated():
    """docs/settings.md's table is `python -m addon.core.options --markdown`: regenerate it after changing OPTIONS."""
    text = SETTINGS_PAGE.read_text()
    assert options.markdown_table() in text, "docs/settings.md's table differs from OPTIONS: paste in " \
                                             "the output of `python -m addon.core.options --markdown`"


def test_help_lists_every_option_with_its_default():
    text = options.help_text()
    for o in settings.OPTIONS:
        assert f"{o.env}  (--set {o.name}=...)  [{o.default_text}]" in text
