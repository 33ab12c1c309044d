"""Issue 17, the pure parts: the access token's request, which hub token may go where, the admin warning, the
bridge's own mitmproxy options, and what goes upstream and out of pages."""

import dataclasses
import os
import socket

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons
from mitmproxy.test import tutils

from addon.core import login_record
from addon import access as access_module
from addon.access import Access
from addon.autostart import resent_headers
from addon.commands import launch
from addon.config import Config
from addon.core import option_values
from addon.core import settings
from addon.core import owner
from addon.hub import tokens
from addon.rewrite import page_token
from addon_context import configured
from addon_context import request_flow
from devhub.ports import free_ports


@pytest.mark.parametrize("user, server, scope", [
    ("alice", "", "access:servers!server=alice/"),
    ("bob", "gpu", "access:servers!server=bob/gpu"),
])
def test_the_access_token_asks_for_one_server_only(user, server, scope):
    request = tokens.access_request(user, server, 86400)
    assert request["scopes"] == [scope] and request["expires_in"] == 86400
    assert request["note"].startswith("jupyterhub-bridge on ") and f"access to {user}/{server}" in request["note"]


def test_the_access_tokens_note_names_this_machine_process_and_hub_token():
    note = tokens.access_request("alice", "", 60, made_by="a7")["note"]
    assert note == f"jupyterhub-bridge on {socket.gethostname()} (pid {os.getpid()}, by token a7): access to alice/"
    assert not tokens.access_leftover(note, socket.gethostname(), lambda pid: False)  # its own: in use
    assert tokens.access_leftover(note, socket.gethostname(), lambda pid: False, made_by="a7")


@pytest.mark.parametrize("note, made_by, leftover", [
    ("jupyterhub-bridge on laptop (pid 41, by token a7): access to alice/", None, True),  # its process ended
    ("jupyterhub-bridge on laptop (pid 41): access to bob/gpu (renewed)", None, True),
    ("jupyterhub-bridge on laptop (pid 42, by token a7): access to alice/", None, False),  # a bridge that runs
    ("jupyterhub-bridge on laptop (pid 42, by token a7): access to alice/", "a7", True),  # logout of its login
    ("jupyterhub-bridge on laptop (pid 42, by token b9): access to alice/", "a7", False),  # another login's
    ("jupyterhub-bridge on desktop (pid 41, by token a7): access to alice/", "a7", False),  # another machine's
    ("jupyterhub-bridge on desktop (pid 41, by token a7): access to alice/", None, False),
    ("jupyterhub-bridge on laptop: access to alice/", None, False),  # made before the note said: unknown, kept
    ("jupyterhub-bridge on laptop", "a7", False),  # a login token, not an access token
    ("jupyterhub-bridge on laptop (renewed)", None, False),
    ("my own token (pid 41): access to alice/", None, False),
    ("", None, False),
])
def test_which_access_tokens_are_left_over(note, made_by, leftover):
    assert tokens.access_leftover(note, "laptop", lambda pid: pid == 42, made_by) is leftover


MINTS = owner.from_model({"name": "alice", "scopes": ["tokens!user=alice", "access:servers!user=alice"]})
REACHES = owner.from_model({"name": "alice", "scopes": ["access:servers!user=alice", "access:servers!server=bob/"]})


@pytest.mark.parametrize("me, user, refused", [
    (MINTS, "alice", False), (MINTS, "bob", False),  # mints an access token for either
    (REACHES, "alice", False),  # cannot mint: goes as it is, to its owner's own server
    (REACHES, "bob", True),  # ... but never to another user's server, whose code would read it
    (owner.from_model({"name": "alice", "scopes": ["inherit"]}), "bob", False),
])
def test_a_hub_token_that_may_not_mint_goes_only_to_its_owners_server(me, user, refused):
    why = tokens.cannot_send(me, user)
    assert bool(why) == refused
    if refused:
        assert why == ("the hub token of 'alice' may not make tokens (scope tokens!user=alice), so the bridge would "
                       "have to send it itself to the server of 'bob', whose code can read it")


@pytest.mark.parametrize("me, warned", [
    ({"name": "root", "admin": True, "scopes": ["tokens!user=root"]}, True),
    ({"name": "root", "scopes": ["admin:users", "tokens!user=root"]}, True),
    ({"name": "alice", "admin": False, "scopes": ["tokens!user=alice", "access:servers!user=alice"]}, False),
    ({"name": "alice"}, False),
])
def test_login_warns_a_hub_admin(me, warned):
    assert owner.from_model(me).admin == warned


def test_an_empty_ca_setting_is_the_system_store():
    assert option_values.ca_file("") is None and option_values.ca_file("  ") is None


def test_the_stored_ca_is_the_stored_trust(tmp_path):
    hub = {"jupyter_server_ip_or_name": "10.1.2.3", "jupyter_server_port": "8443"}
    assert login_record.Login(settings=hub).values()["jupyter_cluster_ca_cert"] == ""  # the system store, said explicitly
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    trust = login_record.Trust(str(ca), login_record.file_sha256(str(ca)))
    assert trust.sha256 and len(trust.sha256) == 64
    assert login_record.Login(settings=hub, trust=trust).values()["jupyter_cluster_ca_cert"] == str(ca)
    assert login_record.from_json(login_record.to_json(login_record.Login(settings=hub, trust=trust))).trust == trust
    assert login_record.Login().values() == {}


@pytest.mark.parametrize("extra, refused", [
    (["--set", "confdir=/elsewhere"], True), (["--set=confdir=/elsewhere"], True),
    (["--set", "flow_detail=2"], False), (["~u", "confdir=x"], False)])
def test_a_confdir_of_the_users_own_is_refused(extra, refused):
    if refused:
        with pytest.raises(ValueError, match="confdir: the bridge runs mitmproxy with a folder of its own"):
            launch.own_options(extra)
    else:
        launch.own_options(extra)


def test_the_confdir_is_beside_the_login_or_private_and_temporary(tmp_path):
    where = launch.own_confdir({"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "home")})
    assert where == str(tmp_path / "home" / "mitmproxy") and (tmp_path / "home" / "mitmproxy").is_dir()
    assert (tmp_path / "home" / "mitmproxy").stat().st_mode & 0o077 == 0
    temporary = launch.own_confdir({})
    assert "jupyterhub-bridge-mitmproxy-" in temporary


OPTIONS = dict(jupyter_server_ip_or_name="10.0.0.5", jupyter_server_port="8443", jupyter_username="alice",
               jupyterhub_api_token="hub-0123456789abcdef", jupyter_proxy_token="local-0123")


def test_ssl_insecure_is_refused_however_it_is_given():
    c = Config({})
    with taddons.context(c) as tctx:
        tctx.configure(c, **OPTIONS)
        with pytest.raises(exceptions.OptionsError, match="ssl_insecure is on: the bridge sends your tokens"):
            tctx.configure(c, ssl_insecure=True)


def test_a_reconfiguration_keeps_the_access_token_when_it_still_fits():
    c = Config({})
    with taddons.context(c) as tctx:
        tctx.configure(c, **OPTIONS)
        c.use(dataclasses.replace(c.settings, server_token="access-token"))
        tctx.configure(c, jupyter_start_timeout="60")
        assert c.settings.server_token == "access-token"
        tctx.configure(c, jupyter_username="bob")  # another server: another access token is made
        assert c.settings.server_token is None


def settings_with(server_token):
    values = {o.name: o.default for o in settings.OPTIONS} | OPTIONS
    return dataclasses.replace(settings.resolve(values, {}), server_token=server_token)


def test_the_request_autostart_sends_again_carries_the_access_token_in_use_now():
    request = tutils.treq(headers=((b"host", b"h"), (b"authorization", b"token old-access")))
    assert resent_headers(request, settings_with("new-access")) == [("host", "h"),
                                                                     ("Authorization", "token new-access")]


def test_pages_lose_the_token_that_went_upstream():
    assert page_token(settings_with("access-token")) == "access-token"
    assert page_token(settings_with(None)) == "hub-0123456789abcdef"  # nothing of the bridge's went up yet


def test_the_access_token_is_asked_for_only_while_there_is_none(caplog):
    """Issue 22: most requests find the token there and make no coroutine; the hub's reason is logged escaped."""
    with configured(jupyter_server_ip_or_name="10.0.0.5", jupyter_server_port="8443", jupyter_username="alice",
                    jupyter_proxy_port="8000", jupyter_cluster_ca_cert="./my_sslca.cert",
                    jupyter_proxy_token="local-secret", jupyterhub_api_token="hub-token") as c:
        access = Access(c)
        asking = access.requestheaders(request_flow("/api/status", Authorization="token local-secret"))
        assert asking is not None
        asking.close()
        for others in (request_flow("/api/status"), request_flow("/api/status", Authorization="token theirs"),
                       request_flow("/api/status?token=local-secret", Host="evil.example:8000"),
                       request_flow("/api/%2e%2e/status", Authorization="token local-secret")):
            assert access.requestheaders(others) is None  # issue 28: only the bridge's own clients ask the hub
        (asking := access.requestheaders(request_flow("/api/status?token=local-secret"))).close()
        assert asking is not None
        c.use(dataclasses.replace(c.settings, server_token="access-token"))
        assert access.requestheaders(request_flow("/api/status", Authorization="token local-secret")) is None
        access.failed("the hub said \x1b]52;c;aGk=\x07")
    assert "\x1b" not in caplog.text and "\\x1b]52" in caplog.text


async def test_the_access_token_is_asked_for_with_the_settings_and_the_first_request_waits_for_it(caplog):
    """Issue 19's start-up time: the hub is asked when the settings are known, and the port need not wait for its
    answer; the first request does. Here nothing listens where the hub should be (loopback): the request's wait
    ends with the failure logged and no token."""
    (port,) = free_ports(1)
    with configured(jupyter_server_ip_or_name="127.0.0.1", jupyter_server_port=str(port), jupyter_username="alice",
                    jupyter_proxy_token="local-secret", jupyterhub_api_token="hub-token") as c:
        access = Access(c)
        access.configure(set())
        assert access.making is not None and not access.making.done()  # asked, not waited for
        asking = access.requestheaders(request_flow("/api/status", Authorization="token local-secret"))
        await asking
        assert access.making.done() and c.settings.server_token is None
        failed = access.making  # issue 28: the next request within the back-off asks no more, it is told
        await access.requestheaders(request_flow("/api/status", Authorization="token local-secret"))
        assert access.making is failed and access.backoff == access_module.RETRY_FIRST
        access.retry_at = 0.0  # the back-off is over: asked again, and the next back-off is twice as long
        await access.requestheaders(request_flow("/api/status", Authorization="token local-secret"))
        assert access.making is not failed and access.backoff == 2 * access_module.RETRY_FIRST
    assert "no access token for your server yet" in caplog.text
