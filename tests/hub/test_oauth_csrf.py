"""Issue 28, Medium: `login --browser` stores only the user's own account. On a hub that does not require PKCE
(JupyterHub's default; field note 50), a local user who reads the sign-in URL's state (on the browser's command
line) and holds the shared client secret delivers their own authorization code, asked for without a challenge, to
the callback: the hub exchanges it whatever verifier login sends. Here alice (the attacker) does that to bob's
login: refused when bob's name is known, not confirmed on a terminal when it is not, and without a terminal
login --browser asks for the name before any sign-in."""

import os
import urllib.parse

import httpx
import pytest
from bridge_process import ROOT
from bridge_process import free_port
from terminal import Terminal
from test_oauth import OPEN
from test_oauth import Login
from test_oauth import authorize
from test_oauth import browser
from test_oauth import environment
from test_oauth import login_args
from test_oauth import sign_in


@pytest.fixture(scope="module")
def lax_hub(start_hub):
    """The bridge's OAuth client on a hub that does not require PKCE."""
    return start_hub(name="hub-oauth-lax", users="alice,bob", oauth_client="jupyterhub-bridge",
                     oauth_port=free_port())


@pytest.fixture
def secret_file(lax_hub, tmp_path):
    path = tmp_path / "oauth-secret"
    path.write_text(lax_hub["oauth_client"]["client_secret"] + "\n")
    path.chmod(0o600)
    return path


def alices_code_to_the_callback(hub, victims_url: str) -> None:
    """The attack: alice signs in as herself with the client of the victim's sign-in URL, without its PKCE challenge
    (the hub does not require one) and with its state, and sends the hub's redirect (her code, the victim's state) to
    the victim's callback, as a page she gets the victim's browser to open would."""
    parts = urllib.parse.urlsplit(victims_url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if not k.startswith("code_challenge")]
    with browser(hub) as client:
        sign_in(client, hub, "alice")
        url = parts._replace(query=urllib.parse.urlencode(query)).geturl()
        first = client.get(url, extensions=client.extensions)  # a 302 at once: alice authorized the client before
        back = first if first.status_code == 302 else authorize(client, url)
    location = back.headers["location"]
    assert location.startswith(hub["oauth_client"]["redirect_uri"] + "?code=") and "state=" in location, location
    assert httpx.get(location).status_code == 200  # the callback took it: its state is the sign-in's


def test_another_users_code_is_refused_when_the_name_is_known(lax_hub, secret_file, tmp_path):
    home = tmp_path / "home"
    login = Login(lax_hub, environment(home, lax_hub, secret_file), "--set", "jupyter_username=bob")
    alices_code_to_the_callback(lax_hub, login.authorize_url())
    status, output = login.finish()
    assert status == 1, output
    assert "error: the sign-in came back signed in as 'alice', not as 'bob': nothing was stored." in output, output
    assert not (home / "login.json").exists()


def test_without_a_terminal_login_browser_needs_the_name_before_any_sign_in(lax_hub, secret_file, tmp_path):
    home = tmp_path / "home"
    status, output = Login(lax_hub, environment(home, lax_hub, secret_file)).finish()
    assert status == 1, output
    assert "login --browser without a terminal needs your user name, to check whom the hub signed in: add --set " \
           "jupyter_username=<your user name on the hub>." in output, output
    assert OPEN not in output and not (home / "login.json").exists()


def test_on_a_terminal_whom_the_hub_signed_in_is_shown_and_not_taken_unconfirmed(lax_hub, secret_file, tmp_path):
    home = tmp_path / "home"
    term = Terminal([*login_args(lax_hub, "--browser", "--no-open")], environment(home, lax_hub, secret_file))
    seen = term.wait_for("Waiting for the browser")
    url = seen.split(OPEN, 1)[1].split("\n", 1)[0].strip()
    alices_code_to_the_callback(lax_hub, url)
    term.wait_for("The hub signed you in as 'alice'. Is that you? [y/N]")
    term.type("")  # Enter: the default is no
    status, said = term.finish()
    assert status == 1 and "the sign-in as 'alice' was not confirmed: nothing was stored." in said, said
    assert not (home / "login.json").exists()
