"""Login profiles (issue 31): which profile a command uses, where each keeps its login, and `profile list/use/remove`
on stored files (the real-hub side is tests/hub/test_profiles.py; this file is named apart from it, as pytest imports test files by their base name)."""

import os
import stat

import pytest

from addon import store
from addon.commands import cli
from addon.commands import profile
from addon.core import login_record
from addon.core import profiles
from addon.core.errors import SettingError

HUB = {"jupyter_server_ip_or_name": "10.1.2.3", "jupyter_server_port": "8443", "jupyter_server_name": "hub.internal",
       "jupyterhub_base_url": "/", "jupyter_username": "alice"}


@pytest.fixture
def home(tmp_path):
    return {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "bridge-home")}


@pytest.mark.parametrize(("argv", "name", "rest"), [
    ([], None, []),
    (["check"], None, ["check"]),
    (["--profile", "work", "check"], "work", ["check"]),
    (["check", "--profile", "work", "--set", "a=b"], "work", ["check", "--set", "a=b"]),
    (["--profile=course-2026"], "course-2026", []),
    (["--set", "flow_detail=2", "--profile", "w"], "w", ["--set", "flow_detail=2"]),
    (["--", "--profile", "x"], None, ["--", "--profile", "x"]),  # after --: mitmdump's, not ours
])
def test_the_profile_flag_is_taken_out_wherever_it_stands(argv, name, rest):
    assert profiles.take_flag(argv) == (name, rest)


@pytest.mark.parametrize("argv", [["--profile"], ["check", "--profile", "--set"], ["--profile", "../x"],
                                  ["--profile=.hidden"], ["--profile", "a/b"], ["--profile="]])
def test_a_profile_flag_without_a_usable_name_is_refused(argv):
    with pytest.raises(SettingError, match="profile"):
        profiles.take_flag(argv)


@pytest.mark.parametrize(("environ", "saved", "expected"), [
    ({}, None, "default"),
    ({}, "work", "work"),
    ({profiles.ENV: "course"}, "work", "course"),
    ({profiles.ENV: " "}, "work", "work"),
])
def test_environment_over_saved_default_over_default(environ, saved, expected):
    assert profiles.chosen(environ, saved) == expected


@pytest.mark.parametrize(("taken", "busy", "expected"), [
    (set(), set(), 8000),
    ({8000}, set(), 8001),
    ({8000, 8001}, {8002}, 8003),
    (set(), {8000}, 8001),
])
def test_next_port_skips_kept_and_busy_ports(taken, busy, expected):
    assert profiles.next_port(taken, lambda port: port not in busy) == expected


def test_next_port_gives_up_with_what_to_set():
    with pytest.raises(SettingError, match="JUPYTER_PROXY_PORT"):
        profiles.next_port(set(), lambda port: False)


def save(environ, user: str, port: str | None = None, token: str = "") -> None:
    kept = {**HUB, "jupyter_username": user, **({"jupyter_proxy_port": port} if port else {})}
    hub_token = login_record.HubToken(token=token, user=user) if token else None
    store.save(login_record.Login(settings=kept, hub_token=hub_token, local_token=f"local-{user}"), environ)


def test_the_default_profile_is_the_login_file_of_before_profiles(home):
    save(home, "alice")
    assert store.path(home) == store.home_folder(home) / "login.json"
    assert store.load({**home, profiles.ENV: "default"}).local_token == "local-alice"
    assert store.profile_names(home) == ["default"]


def test_each_profile_keeps_its_own_login_in_its_own_private_folder(home):
    save(home, "alice")
    save({**home, profiles.ENV: "course"}, "bob", "8001")
    assert store.load(home).local_token == "local-alice"
    assert store.load({**home, profiles.ENV: "course"}).local_token == "local-bob"
    assert store.load(home, name="course").settings["jupyter_proxy_port"] == "8001"
    for where in store.folders(home, "course"):
        assert stat.S_IMODE(os.stat(where).st_mode) == 0o700, where
    assert store.profile_names(home) == ["default", "course"]


def test_a_profile_folder_others_may_write_to_is_refused(home):
    save({**home, profiles.ENV: "course"}, "bob", "8001")
    os.chmod(store.home_folder(home) / store.PROFILES, 0o777)
    with pytest.raises(SettingError, match="chmod 700"):
        store.load({**home, profiles.ENV: "course"})


def test_profile_use_list_and_remove(home, capsys):
    save(home, "alice")
    save({**home, profiles.ENV: "course"}, "bob", "8001")
    assert profile.main(["use", "course"], home) == 0
    assert store.profile(home) == "course" and store.load(home).local_token == "local-bob"
    assert store.profile({**home, profiles.ENV: "default"}) == "default"  # the environment still wins
    capsys.readouterr()
    assert profile.main(["list"], home) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["profile", "hub", "user", "server", "port", "hub", "token"]
    assert lines[1].split()[:5] == ["default", "10.1.2.3:8443/", "alice", "(default)", "8000"]
    assert lines[2].split()[:6] == ["*", "course", "10.1.2.3:8443/", "bob", "(default)", "8001"]
    assert profile.main(["remove", "course"], home) == 0
    assert store.profile_names(home) == ["default"] and store.profile(home) == "default"
    assert not store.folder(home, "course").exists()


def test_profile_use_of_a_profile_that_does_not_exist_says_how_to_make_it(home, capsys):
    assert profile.main(["use", "nowhere"], home) == 1
    assert "login --profile nowhere" in capsys.readouterr().err
    assert store.saved_profile(home) is None


def test_the_cli_puts_the_flag_in_the_environment_for_every_subcommand(home, monkeypatch, capsys):
    for key, value in home.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(profiles.ENV, raising=False)
    save({**home, profiles.ENV: "course"}, "bob", "8001")
    assert cli.main(["profile", "list", "--profile", "course"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("*")
    assert os.environ[profiles.ENV] == "course"
    assert cli.main(["--profile", "no/such"]) == 2
