"""The stored login (addon/store.py) and how the settings use it: file, modes, precedence."""

import json
import os
import stat
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from addon.core import diagnose
from addon.core import settings
from addon import store

HUB = {"jupyter_server_ip_or_name": "10.1.2.3", "jupyter_server_port": "8443", "jupyter_server_name": "hub.internal",
       "jupyterhub_base_url": "/jupyter/", "jupyter_username": "alice"}


@pytest.fixture
def home(tmp_path):
    return {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "bridge-home")}


def logged_in(environ, expires_at: str | None = None):
    expires_at = expires_at or f"{datetime.now(timezone.utc) + timedelta(days=30):%Y-%m-%dT%H:%M:%S.%fZ}"
    data = {"settings": dict(HUB), "hub_token": {"token": "stored-hub-token", "id": "a7", "user": "alice",
                                                 "expires_at": expires_at, "lifetime": 2592000,
                                                 "scopes": ["access:servers!user=alice"]},
            "local_token": "stored-local-token"}
    store.save(data, environ)
    return data


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
    assert store.load({}) == {} and store.delete({}) is False
    with pytest.raises(ValueError, match="HOME is not set"):
        store.save({}, {})


def test_saved_only_for_its_owner_and_read_back(home):
    data = logged_in(home)
    file = store.path(home)
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(file.parent).st_mode) == 0o700
    assert store.load(home) == data
    assert [p.name for p in file.parent.iterdir()] == ["login.json"]  # no temporary file left


def test_no_file_is_no_login(home):
    assert store.load(home) == {}
    assert store.values(home) == {}
    assert store.local_token(home) is None
    assert store.delete(home) is False


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused_with_the_fix(home, mode):
    logged_in(home)
    os.chmod(store.path(home), mode)
    with pytest.raises(ValueError, match=r"others can read it .*run 'chmod 600 .*login.json'"):
        store.load(home)
    with pytest.raises(ValueError, match="chmod 600"):
        settings.from_environment(home)


def test_a_file_that_is_not_the_bridges_is_refused(home):
    logged_in(home)
    store.path(home).write_text("[1, 2]")
    with pytest.raises(ValueError, match="not the bridge's login file"):
        store.load(home)


@pytest.mark.parametrize("host, port, expected", [
    ("10.1.2.3", 8443, "stored-hub-token"),
    ("10.1.2.3", 443, None),  # another port: another hub
    ("hub.example.org", 8443, None),
])
def test_the_stored_token_goes_only_to_its_own_hub(home, host, port, expected):
    assert store.hub_token(logged_in(home), host, port) == expected


def test_precedence_set_over_environment_over_stored_over_default(home):
    logged_in(home)
    environ = {**home, "JUPYTER_SERVER_PORT": "8443", "JUPYTER_USERNAME": "bob"}
    s = settings.from_environment(environ, overrides={"jupyter_server_name": "from-set"})
    assert s.tls_name == "from-set"  # --set over the stored one
    assert s.username == "bob"  # environment over the stored one
    assert (s.server_host, s.base_url) == ("10.1.2.3", "/jupyter/")  # stored
    assert s.listen_port == 8000  # default
    assert s.hub_token == "stored-hub-token"
    assert s.local_secret == "stored-local-token"


def test_environment_tokens_win_over_stored_ones(home):
    logged_in(home)
    s = settings.from_environment({**home, "JUPYTERHUB_API_TOKEN": "env-hub", "JUPYTER_PROXY_TOKEN": "env-local"})
    assert (s.hub_token, s.local_secret) == ("env-hub", "env-local")


def test_another_hub_in_the_environment_gets_no_stored_token(home):
    logged_in(home)
    s = settings.from_environment({**home, "JUPYTER_SERVER_IP_OR_NAME": "hub.example.org"})
    assert s.hub_token is None
    assert s.tls_name == "hub.internal"  # the stored TLS name still applies: set it too when you change hubs


def test_the_mitmproxy_side_sees_the_same_values(home):
    """The launcher hands mitmdump the environment with the stored settings in it."""
    logged_in(home)
    environ = settings.with_stored({**home, "JUPYTER_USERNAME": "bob"})
    assert environ["JUPYTER_SERVER_IP_OR_NAME"] == "10.1.2.3" and environ["JUPYTER_USERNAME"] == "bob"
    assert "stored-hub-token" not in json.dumps(environ)  # the token is read from the file, not passed around


def test_banner_says_what_came_from_the_file(home):
    expires = store.expiry_text(logged_in(home))
    environ = {**home, "JUPYTER_USERNAME": "alice"}
    lines = store.origin_lines(environ, {"jupyter_server_port": "8443"}, settings.ENV_OF, "stored-hub-token",
                               "stored-local-token")
    assert lines[0] == "  set with --set: jupyter_server_port"
    assert lines[1] == (f"  from {store.path(home)} (./run.sh login): JUPYTER_SERVER_IP_OR_NAME, JUPYTER_SERVER_NAME, "
                        f"JUPYTERHUB_BASE_URL, the hub token ({expires}), the bridge's token")
    assert store.origin_lines(home, {}, settings.ENV_OF, "other", "other")[0].endswith("JUPYTER_USERNAME")


@pytest.mark.parametrize("expires_at, text", [
    ("2026-12-29T13:00:00.123456Z", "expires 2026-12-29 13:00 UTC"),
    ("2026-12-29T13:00:00+00:00", "expires 2026-12-29 13:00 UTC"),
    ("2026-11-29T11:59:00Z", "expired on 2026-11-29 11:59 UTC"),
    (None, "never expires"),
])
def test_expiry_text(expires_at, text):
    now = store.parse_time("2026-11-29T12:00:00Z")
    assert store.expiry_text({"hub_token": {"expires_at": expires_at}}, now) == text


@pytest.mark.parametrize("token, now, advice", [
    ("stored-hub-token", "2026-12-30T00:00:00Z", "Your hub token expired on 2026-12-29 13:00 UTC: run ./run.sh login."),
    ("stored-hub-token", "2026-12-01T00:00:00Z",
     "Your hub token was revoked (or lost its rights) on the hub: run ./run.sh login."),
    ("a-token-from-the-environment", "2026-12-01T00:00:00Z", ""),  # not ours: the general advice applies
    (None, "2026-12-01T00:00:00Z", ""),
])
def test_advice_for_a_refused_stored_token(home, token, now, advice):
    logged_in(home, "2026-12-29T13:00:00.000000Z")
    assert store.refused_token_advice(token, home, store.parse_time(now)) == advice


def test_the_diagnosis_of_a_refused_stored_token_says_run_login():
    refused = diagnose.Outcome(403, {}, '{"message": "Forbidden"}', credential=True)
    advice = "Your hub token expired on 2026-12-29 13:00 UTC: run ./run.sh login."
    assert diagnose.diagnose(refused, diagnose.Facts(login_advice=advice)).fix == advice
    assert "Create a new token" in diagnose.diagnose(refused, diagnose.Facts()).fix
