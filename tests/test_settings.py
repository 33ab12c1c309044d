import pytest

from addon import settings


def values(**over):
    base = {o.name: o.default for o in settings.OPTIONS}
    base.update(jupyter_server_ip_or_name="10.1.2.3", jupyter_username="alice")
    base.update(over)
    return base


def test_defaults_follow_the_seed():
    s = settings.resolve(values())
    assert (s.listen_host, s.listen_port, s.server_port) == ("localhost", 8000, 8000)
    assert s.tls_name == "jupyterhub"  # dialling an IP
    assert s.ca_file is None  # ./my_sslca.cert left at its default and absent: system trust store
    assert s.prefix == "/user/alice/"
    assert s.connect_url == "http://127.0.0.1:8000/"


def test_tls_name_is_the_dialled_name_or_the_setting():
    assert settings.resolve(values(jupyter_server_ip_or_name="hub.example.org")).tls_name == "hub.example.org"
    assert settings.resolve(values(jupyter_server_name="jh.cluster")).tls_name == "jh.cluster"
    assert settings.resolve(values(jupyter_server_ip_or_name="[::1]")).dial_url == "https://[::1]:8000/"


@pytest.mark.parametrize("user, server, base, prefix", [
    ("alice", "", "/", "/user/alice/"),
    ("alice", "gpu", "/", "/user/alice/gpu/"),
    ("a b@x~y", "", "/", "/user/a%20b@x~y/"),
    ("ünï", "", "/", "/user/%C3%BCn%C3%AF/"),
    ("alice", "", "jupyter", "/jupyter/user/alice/"),
    ("alice", "/gpu/", "/jupyter/", "/jupyter/user/alice/gpu/"),
])
def test_prefix_escapes_like_jupyterhub(user, server, base, prefix):
    s = settings.resolve(values(jupyter_username=user, jupyter_named_server=server, jupyterhub_base_url=base))
    assert s.prefix == prefix


@pytest.mark.parametrize("over, words", [
    ({"jupyter_server_ip_or_name": ""}, "JUPYTER_SERVER_IP_OR_NAME is not set"),
    ({"jupyter_username": " "}, "JUPYTER_USERNAME is not set"),
    ({"jupyter_server_port": "0"}, "JUPYTER_SERVER_PORT='0' is not a port"),
    ({"jupyter_proxy_port": "80a"}, "JUPYTER_PROXY_PORT='80a' is not a port"),
    ({"jupyter_server_port": "65536"}, "is not a port"),
    ({"jupyter_cluster_ca_cert": "/nonexistent/ca.pem"}, "no such file"),
    ({"jupyterhub_base_url": "/a/../b"}, "must not contain"),
])
def test_bad_settings_say_what_to_do(over, words):
    with pytest.raises(ValueError, match=words.replace("?", r"\?")):
        settings.resolve(values(**over))


def test_ca_file_checks(tmp_path, monkeypatch):
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="not a PEM certificate"):
        settings.resolve(values(jupyter_cluster_ca_cert=str(not_pem)))
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert settings.resolve(values(jupyter_cluster_ca_cert="~/ca.pem")).ca_file == str(pem)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_sslca.cert").write_text(pem.read_text())
    assert settings.resolve(values()).ca_file == str(tmp_path / "my_sslca.cert")


def test_environment_gives_the_defaults_and_overrides_win():
    env = {"JUPYTER_SERVER_IP_OR_NAME": "hub", "JUPYTER_USERNAME": "bob", "JUPYTER_PROXY_PORT": "9000"}
    s = settings.from_environment(env, {"jupyter_username": "carol"})
    assert (s.server_host, s.username, s.listen_port) == ("hub", "carol", 9000)


def test_own_names_and_hub_origins():
    s = settings.resolve(values(jupyter_proxy_ip_or_name="mybox", jupyter_server_port="443"))
    assert s.own_authorities == {"localhost:8000", "127.0.0.1:8000", "[::1]:8000", "mybox:8000"}
    assert "https://jupyterhub" in s.hub_origins and "https://10.1.2.3:443" in s.hub_origins
