"""The stored login (addon/store.py) and how the settings use it: file, modes, precedence."""

import json
import os
import stat
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
import trustme

from addon.core import login_record
from addon.core import diagnose
from addon.core import settings
from addon import store

HUB = {"jupyter_server_ip_or_name": "10.1.2.3", "jupyter_server_port": "8443", "jupyter_server_name": "hub.internal",
       "jupyterhub_base_url": "/jupyter/", "jupyter_username": "alice"}


@pytest.fixture
def home(tmp_path):
    return {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "bridge-home")}


def logged_in(environ, expires_at: str | None = None) -> login_record.Login:
    expires_at = expires_at or f"{datetime.now(timezone.utc) + timedelta(days=30):%Y-%m-%dT%H:%M:%S.%fZ}"
    login = login_record.Login(settings=dict(HUB), hub_token=login_record.HubToken(
        token="stored-hub-token", id="a7", user="alice", expires_at=expires_at, lifetime=2592000,
        scopes=("access:servers!user=alice",)), local_token="stored-local-token")
    store.save(login, environ)
    return login


def settings_of(environ, overrides=None) -> settings.Settings:
    """The entry points' settings: they read the stored login and pass it in."""
    return settings.from_environment(environ, overrides, store.load(environ))


def stored(environ) -> login_record.Login:
    return store.load(environ)


@pytest.mark.parametrize("environ, expected", [
    ({"JUPYTERHUB_BRIDGE_HOME": "/b", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/b/login.json"),
    ({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/jupyterhub-bridge/login.json"),
    ({"JUPYTERHUB_BRIDGE_HOME": " ", "HOME": "/h"}, "/h/.config/jupyterhub-bridge/login.json"),
    ({"XDG_CONFIG_HOME": "", "HOME": "/h"}, "/h/.config/jupyterhub-bridge/login.json"),
    ({}, "None"),  # no home, no stored login: not the one of whoever runs the tests
])
def test_where_the_file_lives(environ, expected):
    assert str(store.path(environ)) == expected


def test_an_environment_without_a_home_has_no_login():
    assert store.load({}) == login_record.Login() and store.delete({}) is False
    with pytest.raises(ValueError, match="HOME is not set"):
        store.save(login_record.Login(), {})


def test_saved_only_for_its_owner_and_read_back(home):
    login = logged_in(home)
    file = store.path(home)
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(file.parent).st_mode) == 0o700
    assert store.load(home) == login
    assert [p.name for p in file.parent.iterdir()] == ["login.json"]  # no temporary file left
    # The file's shape: as earlier versions wrote it, and the trust of the login (issue 17; null: not stored).
    data = json.loads(file.read_text())
    assert data == {
        "settings": HUB, "local_token": "stored-local-token", "trust": None,
        "hub_token": {"token": "stored-hub-token", "id": "a7", "user": "alice", "lifetime": 2592000,
                      "expires_at": login.hub_token.expires_at, "scopes": ["access:servers!user=alice"]}}
    del data["trust"]  # a login stored before trust was: loads, its CA setting (none: the system store) is its trust
    file.write_text(json.dumps(data))
    assert store.load(home) == login and store.load(home).kept_trust() == login_record.Trust()


def test_no_file_is_no_login(home):
    assert store.load(home) == login_record.Login()
    assert store.load(home).values() == {}
    assert store.load(home).local_token is None
    assert store.delete(home) is False


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused_with_the_fix(home, mode):
    logged_in(home)
    os.chmod(store.path(home), mode)
    with pytest.raises(ValueError, match=r"others can read it .*run 'chmod 600 .*login.json'"):
        store.load(home)
    with pytest.raises(ValueError, match="chmod 600"):
        settings_of(home)


def test_a_file_or_folder_of_another_user_is_refused_with_the_fix(home, monkeypatch):
    logged_in(home)
    file = store.path(home)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(file).st_uid + 1)  # as another user sees them
    with pytest.raises(ValueError, match=rf"{file.parent}, the folder of your login file, belongs to another user "
                                         r"\(uid \d+\): run 'sudo chown \d+ "):
        store.load(home)
    with pytest.raises(ValueError, match="belongs to another user"):
        store.load(home, private=False)  # logout, too: it would send another user's token
    with pytest.raises(ValueError, match="belongs to another user"):
        store.save(login_record.Login(), home)


def test_a_login_file_of_another_user_in_a_folder_of_ours_is_refused(home, monkeypatch):
    logged_in(home)
    file = store.path(home)
    real = os.stat(file).st_uid
    monkeypatch.setattr(store, "check_folder", lambda where, private=True: None)  # the folder is ours
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    says = rf"{file} belongs to another user \(uid {real}\), not to you: run 'rm {file}'"
    with pytest.raises(ValueError, match=says):
        store.load(home)


def test_a_folder_others_may_write_to_is_refused_with_the_fix(home):
    logged_in(home)
    folder = store.path(home).parent
    os.chmod(folder, 0o770)
    with pytest.raises(ValueError, match=rf"{folder}, the folder of your login file, is writable by others "
                                         rf"\(mode drwxrwx---\): run 'chmod 700 {folder}'"):
        store.load(home)
    assert store.load(home, private=False).local_token == "stored-local-token"  # logout may still revoke it
    store.save(store.load(home, private=False), home)  # a new login makes it private again
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_a_folder_that_is_a_symbolic_link_is_refused(home, tmp_path):
    logged_in(home)
    elsewhere = tmp_path / "link"
    elsewhere.symlink_to(store.path(home).parent)
    linked = {"JUPYTERHUB_BRIDGE_HOME": str(elsewhere)}
    for use in (store.load, lambda environ: store.save(login_record.Login(), environ)):
        with pytest.raises(ValueError, match=rf"{elsewhere}, the folder of your login file, is a symbolic link or not "
                                             rf"a folder: run 'rm {elsewhere}'"):
            use(linked)


def test_resolve_reads_no_login_file(home):
    """The stored login is an argument: resolve itself reads no login file, whatever the environment names."""
    login = logged_in(home)
    values = {o.name: None if o.secret else o.default for o in settings.OPTIONS}
    values |= {**HUB, "jupyter_server_port": "8443"}
    assert settings.resolve(values, home).hub_token is None
    s = settings.resolve(values, home, login)
    assert (s.hub_token, s.local_secret) == ("stored-hub-token", "stored-local-token")


def test_a_file_that_is_not_the_bridges_is_refused(home):
    logged_in(home)
    store.path(home).write_text("[1, 2]")
    with pytest.raises(ValueError, match="not the bridge's login file"):
        store.load(home)


@pytest.mark.parametrize("host, port, tls_name, ca_file, base_url, expected", [
    ("10.1.2.3", 8443, "hub.internal", None, "/jupyter/", "stored-hub-token"),
    ("10.1.2.3", 443, "hub.internal", None, "/jupyter/", None),  # another port: another hub
    ("hub.example.org", 8443, "hub.internal", None, "/jupyter/", None),
    ("10.1.2.3", 8443, "other.name", None, "/jupyter/", None),  # issue 17: a TLS name the login did not verify
    ("10.1.2.3", 8443, "hub.internal", "/somewhere/my_sslca.cert", "/jupyter/", None),  # a CA it did not trust
    ("10.1.2.3", 8443, "hub.internal", None, "/", None),  # issue 28: another base URL may be a user's server
    ("10.1.2.3", 8443, "hub.internal", None, "/jupyter/x/", None),
])
def test_the_stored_token_goes_only_to_its_own_hub_and_trust(home, host, port, tls_name, ca_file, base_url,
                                                              expected):
    found = logged_in(home).hub_token_for(host, port, tls_name, ca_file, base_url)
    assert (found.token if found else None) == expected


def test_a_ca_file_trusted_at_login_that_changed_stops_with_the_fix(home, tmp_path):
    """Issue 17: the login stores the CA file's absolute path and SHA-256."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\none\n")
    login = login_record.Login(settings=dict(HUB), hub_token=login_record.HubToken("stored-hub-token"), trust=login_record.Trust(str(ca), login_record.file_sha256(str(ca))))
    store.save(login, home)
    assert store.load(home).hub_token_for("10.1.2.3", 8443, "hub.internal", str(ca), "/jupyter/").token == "stored-hub-token"
    assert store.load(home).hub_token_for("10.1.2.3", 8443, "hub.internal", None, "/jupyter/") is None  # the system store: not it
    ca.write_text("-----BEGIN CERTIFICATE-----\nanother\n")
    with pytest.raises(ValueError, match=f"{ca}, the CA file ./run.sh login verified the hub with, has changed "
                                         r"since \(its SHA-256 differs\).*run ./run.sh login to accept it"):
        store.load(home).hub_token_for("10.1.2.3", 8443, "hub.internal", str(ca), "/jupyter/")
    with pytest.raises(ValueError, match="has changed"):
        settings_of(home)


def test_a_planted_default_ca_file_is_not_taken_after_a_system_store_login(home, tmp_path, monkeypatch):
    """Issue 17 point 3: ./my_sslca.cert in the current folder, after a login that trusted the system store."""
    logged_in(home)
    monkeypatch.chdir(tmp_path)
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "my_sslca.cert"))
    s = settings_of(home)
    assert (s.ca_file, s.hub_token) == (None, "stored-hub-token")  # the stored trust: the system store
    s = settings_of({**home, "JUPYTER_CLUSTER_CA_CERT": "./my_sslca.cert"})  # said explicitly: wins,
    assert (s.ca_file, s.hub_token) == (str(tmp_path / "my_sslca.cert"), None)  # but gets no stored token
    assert s.local_secret != "stored-local-token"  # nor the stored local token: only with the stored hub token
    assert "is not what ./run.sh login verified the hub with (the system trust store)" in store.load(home).refusal(
        s.server_host, s.server_port, s.tls_name, s.ca_file, s.base_url)


def test_precedence_set_over_environment_over_stored_over_default(home):
    logged_in(home)
    environ = {**home, "JUPYTER_SERVER_PORT": "8443", "JUPYTER_USERNAME": "bob"}
    s = settings_of(environ)
    assert s.base_url == "/jupyter/"  # stored
    assert s.username == "bob"  # environment over the stored one
    assert (s.server_host, s.tls_name) == ("10.1.2.3", "hub.internal")  # stored
    assert s.listen_port == 8000  # default
    assert s.hub_token == "stored-hub-token"
    assert s.local_secret == "stored-local-token"
    # Issue 28: a base URL given with --set (or the environment) wins, but the stored tokens do not go there: under
    # the same host it may be a user's server
    for s in (settings_of(environ, overrides={"jupyterhub_base_url": "/from-set/"}),
              settings_of({**environ, "JUPYTERHUB_BASE_URL": "/from-env/"})):
        assert s.base_url in ("/from-set/", "/from-env/")
        assert s.hub_token is None and s.local_secret != "stored-local-token"
    s = settings_of(environ, overrides={"jupyterhub_base_url": "jupyter"})  # the same, written otherwise
    assert s.hub_token == "stored-hub-token"
    # Issue 17: a TLS name given with --set wins too, but the stored tokens do not go to a name login did not verify
    s = settings_of(environ, overrides={"jupyter_server_name": "from-set"})
    assert s.tls_name == "from-set" and s.hub_token is None and s.local_secret != "stored-local-token"


def test_environment_tokens_win_over_stored_ones(home):
    logged_in(home)
    s = settings_of({**home, "JUPYTERHUB_API_TOKEN": "env-hub", "JUPYTER_PROXY_TOKEN": "env-local"})
    assert (s.hub_token, s.local_secret) == ("env-hub", "env-local")


def test_another_hub_in_the_environment_gets_no_stored_token(home):
    logged_in(home)
    s = settings_of({**home, "JUPYTER_SERVER_IP_OR_NAME": "hub.example.org"})
    assert s.hub_token is None
    assert s.tls_name == "hub.internal"  # the stored TLS name still applies: set it too when you change hubs


def test_the_mitmproxy_side_sees_the_same_values(home):
    """The launcher hands mitmdump the environment with the stored settings in it."""
    logged_in(home)
    environ = settings.with_stored({**home, "JUPYTER_USERNAME": "bob"}, store.load(home))
    assert environ["JUPYTER_SERVER_IP_OR_NAME"] == "10.1.2.3" and environ["JUPYTER_USERNAME"] == "bob"
    assert "stored-hub-token" not in json.dumps(environ)  # the token is read from the file, not passed around


def test_banner_says_what_came_from_the_file(home):
    login = logged_in(home)
    expires = login.hub_token.expiry_text()
    environ = {**home, "JUPYTER_USERNAME": "alice"}
    lines = store.origin_lines(login, environ, {"jupyter_server_port": "8443"}, settings.ENV_OF, "stored-hub-token",
                               "stored-local-token")
    assert lines[0] == "  set with --set: jupyter_server_port"
    assert lines[1] == (f"  from {store.path(home)} (./run.sh login): JUPYTER_SERVER_IP_OR_NAME, JUPYTER_SERVER_NAME, "
                        f"JUPYTER_CLUSTER_CA_CERT, JUPYTERHUB_BASE_URL, the hub token ({expires}), the bridge's token")
    assert store.origin_lines(login, home, {}, settings.ENV_OF, "other", "other")[0].endswith("JUPYTER_USERNAME")


@pytest.mark.parametrize("expires_at, text", [
    ("2026-12-29T13:00:00.123456Z", "expires 2026-12-29 13:00 UTC"),
    ("2026-12-29T13:00:00+00:00", "expires 2026-12-29 13:00 UTC"),
    ("2026-11-29T11:59:00Z", "expired on 2026-11-29 11:59 UTC"),
    (None, "never expires"),
])
def test_expiry_text(expires_at, text):
    now = login_record.parse_time("2026-11-29T12:00:00Z")
    assert login_record.HubToken("t", expires_at=expires_at).expiry_text(now) == text


@pytest.mark.parametrize("token, now, advice", [
    ("stored-hub-token", "2026-12-30T00:00:00Z", "Your hub token expired on 2026-12-29 13:00 UTC: run ./run.sh login."),
    ("stored-hub-token", "2026-12-01T00:00:00Z",
     "Your hub token was revoked (or lost its rights) on the hub: run ./run.sh login."),
    ("a-token-from-the-environment", "2026-12-01T00:00:00Z", ""),  # not ours: the general advice applies
    (None, "2026-12-01T00:00:00Z", ""),
])
def test_advice_for_a_refused_stored_token(home, token, now, advice):
    login = logged_in(home, "2026-12-29T13:00:00.000000Z")
    assert login_record.refused_token_advice(login.holds(token), login_record.parse_time(now)) == advice


def test_the_diagnosis_of_a_refused_stored_token_says_run_login():
    refused = diagnose.Outcome(403, {}, '{"message": "Forbidden"}', credential=True)
    advice = "Your hub token expired on 2026-12-29 13:00 UTC: run ./run.sh login."
    assert diagnose.diagnose(refused, diagnose.Facts(login_advice=advice)).fix == advice
    assert "Create a new token" in diagnose.diagnose(refused, diagnose.Facts()).fix
