"""Shared pytest fixtures."""

# ---------------------------------------------------------------------------------------------
# devhub fixtures: a real local JupyterHub (python -m devhub, run by the hub venv's python), started and stopped
# by devhub/launcher.py (standard library only: the test process runs in another venv), as the benchmark and
# `./run.sh demo` do.
#
#   hub        (session) the default hub: user alice with a running server; the parsed ready
#              file: pid, hub_url, host, port, tls_name, ca_file, base_url, hub_api_internal,
#              admin_token, users{name: {token, password (None with authenticator="null"),
#              server_url, auth_record}}, authenticator, sharing, record_auth, oauth_client, workdir,
#              log_file, ...
#   start_hub  (session) factory: start_hub(base_url="/jupyter/", iopub_data_rate_limit=1e9,
#              users="alice,bob", no_start=False, port=None, spawn_fail="bob", spawn_reject="dave",
#              spawn_delay="carol=30", authenticator="null", sharing=True,
#              record_auth=True,         each server appends the Authorization header of every request it
#                                        receives to users[name]["auth_record"] (JSON lines: method, path,
#                                        authorization), before it handles the request
#              oauth_client="NAME",      an OAuth client service: oauth_client{name, client_id (service-NAME),
#              oauth_port=8765,          client_secret, redirect_uri (http://127.0.0.1:<oauth_port>/oauth_callback),
#              oauth_require_pkce=True,  allowed_scopes, require_pkce}; users may authorize it
#              send_ca=True,             the public side presents the CA after its own certificate
#              name="hub-x", workdir=...)   (python -m devhub --help says the same)
#              -> another hub's ready dict.
#              start_hub.launch(...) / start_hub.wait(handle) start several at once;
#              start_hub.stop(info) stops one early and returns devhub's exit code.
#              Every hub is stopped at the end of the session.
#              start_hub(hub_version="5.5", ...) runs that JupyterHub (devhub/launcher.py HUB_VENVS).
#   hub_version  the version a test runs against: "6.1" unless the test is marked
#              @pytest.mark.hub_versions("4.1", "5.5", "6.1"), which runs it once against each (ids hub4.1, ...).
# ---------------------------------------------------------------------------------------------
import os
from pathlib import Path

import pytest

pytest_plugins = ["bridge_process", "hostile_hub"]  # their fixtures (start_bridge, hostile), for every test module

from devhub.launcher import DEFAULT_HUB, HUB_VENVS, DevHubFailed, DevHubProcess, stop_all

HUB_TESTS = Path(__file__).resolve().parent / "hub"


def pytest_configure(config):
    config.addinivalue_line("markers", "hub_versions(*versions): the JupyterHub versions (major.minor, of "
                            f"{', '.join(HUB_VENVS)}) a real-hub test runs against, once each; default {DEFAULT_HUB}")


def marked_versions(marker) -> list[str]:
    """The versions of a hub_versions marker, each one devhub can run."""
    unknown = [v for v in marker.args if v not in HUB_VENVS]
    if unknown or not marker.args:
        raise pytest.UsageError(f"hub_versions{marker.args}: name versions of {', '.join(HUB_VENVS)}")
    return list(marker.args)


def pytest_generate_tests(metafunc):
    if "hub_version" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("hub_versions")
        versions = marked_versions(marker) if marker else [DEFAULT_HUB]
        metafunc.parametrize("hub_version", versions, ids=[f"hub{v}" for v in versions])


def pytest_collection_modifyitems(config, items):
    """Every test under tests/hub/ is marked `hub` (it starts real processes): `-m "not hub"` runs the rest."""
    for item in items:
        if HUB_TESTS in item.path.parents:
            item.add_marker(pytest.mark.hub)


class DevHubLauncher:
    """Starts devhub processes and stops them all at close()."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._hubs: list[DevHubProcess] = []

    def launch(self, *, name="devhub", workdir=None, **options) -> DevHubProcess:
        workdir = Path(workdir) if workdir else self._tmp.mktemp(name)  # a hub's workdir again: restart it
        try:
            hub = DevHubProcess.launch(workdir, **options)
        except DevHubFailed as e:
            pytest.fail(str(e), pytrace=False)
        self._hubs.append(hub)
        return hub

    @staticmethod
    def wait(hub: DevHubProcess) -> dict:
        try:
            return hub.wait_ready()
        except DevHubFailed as e:
            pytest.fail(str(e), pytrace=False)

    def __call__(self, **kwargs) -> dict:
        return self.wait(self.launch(**kwargs))

    def stop(self, info) -> int:
        """Stop the hub of this ready dict now; returns devhub's exit status."""
        for hub in self._hubs:
            if hub.info is not None and hub.info["pid"] == info["pid"]:
                return hub.stop()
        raise KeyError(f"no devhub with pid {info['pid']}")

    def close(self):
        stop_all(self._hubs)  # in parallel


@pytest.fixture(scope="session", autouse=True)
def no_stored_login(tmp_path_factory):
    """The developer's own `./run.sh login` must not reach the tests' bridges and checks (they take what the
    environment does not give from it): they all look for it in an empty folder."""
    saved = {name: os.environ.get(name) for name in ("XDG_CONFIG_HOME", "JUPYTERHUB_BRIDGE_HOME")}
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    os.environ.pop("JUPYTERHUB_BRIDGE_HOME", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def start_hub(tmp_path_factory):
    launcher = DevHubLauncher(tmp_path_factory)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(scope="session")
def hub(start_hub):
    return start_hub(name="hub")

# --------------------------------------- end of devhub fixtures -------------------------------
