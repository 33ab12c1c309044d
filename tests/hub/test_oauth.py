"""Issue 21: `./run.sh login --browser` against a real hub with the bridge's OAuth client (PKCE required), a browser
(headless Chromium once, httpx with the hub's login form otherwise) signing in on the hub's own pages; the hub
without the client; pasted tokens exchanged."""

import html
import json
import os
import queue
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid
from datetime import datetime
from datetime import timezone
from pathlib import Path

import httpx
import pytest
from bridge_process import ROOT
from bridge_process import free_port
from bridge_process import hub_env
from kernel_client import execute
from websockets.sync.client import connect as ws_connect

from addon.core import login_record
from addon import store
from devhub.stop import stop_processes

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OPEN = "Open this URL to sign in: "
LIFETIME = 3600
ALICE = ("--set", "jupyter_username=alice")  # without a terminal, login --browser needs the name (issue 28)


@pytest.fixture(scope="module")
def oauth_hub(start_hub):
    return start_hub(name="hub-oauth-login", users="alice,bob", oauth_client="jupyterhub-bridge",
                     oauth_port=free_port(), oauth_require_pkce=True)


@pytest.fixture
def secret_file(oauth_hub, tmp_path):
    path = tmp_path / "oauth-secret"
    path.write_text(oauth_hub["oauth_client"]["client_secret"] + "\n")
    path.chmod(0o600)
    return path


def environment(home, hub, secret_file=None, **env) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    port = urllib.parse.urlsplit(hub["oauth_client"]["redirect_uri"]).port if hub.get("oauth_client") else free_port()
    full.update({"JUPYTERHUB_BRIDGE_HOME": str(home), "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1",
                 "JUPYTER_OAUTH_PORT": str(port), "JUPYTER_TOKEN_LIFETIME": str(LIFETIME), "PYTHONUNBUFFERED": "1",
                 **({"JUPYTER_OAUTH_CLIENT_SECRET_FILE": str(secret_file)} if secret_file else {}), **env})
    return full


def login_args(hub, *extra: str) -> list[str]:
    return [str(ROOT / "run.sh"), "login", f"https://{hub['host']}:{hub['port']}{hub['base_url']}",
            "--set", f"jupyter_server_name={hub['tls_name']}", "--set", f"jupyter_cluster_ca_cert={hub['ca_file']}",
            *extra]


class Login:
    """`./run.sh login --browser --no-open` in a subprocess: its output line by line, as it comes."""

    def __init__(self, hub, env: dict[str, str], *extra: str, stdin: str = ""):
        self.proc = subprocess.Popen(login_args(hub, "--browser", "--no-open", *extra), env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.proc.stdin.write(stdin)
        self.proc.stdin.close()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line_starting(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.lines.get(timeout=left)
            if line is None:
                break
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r}; output: {self.seen}")

    def authorize_url(self) -> str:
        return self.line_starting(OPEN).removeprefix(OPEN)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        try:
            status = self.proc.wait(timeout)
        finally:
            stop_processes([self.proc], 10)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return status, "\n".join(self.seen)


def browser(hub) -> httpx.Client:
    """A browser for the hub: trusts its CA and checks its certificate under the name `jupyterhub`."""
    client = httpx.Client(verify=ssl.create_default_context(cafile=hub["ca_file"]), timeout=30)
    client.extensions = {"sni_hostname": hub["tls_name"]}
    return client


def sign_in(client: httpx.Client, hub, user: str) -> None:
    """A browser's sign-in on the hub's login page: the client keeps the session cookie."""
    base = f"https://{hub['host']}:{hub['port']}"
    client.get(f"{base}/hub/login", extensions=client.extensions)
    form = {"username": user, "password": hub["users"][user]["password"], "_xsrf": client.cookies.get("_xsrf")}
    assert client.post(f"{base}/hub/login", data=form, extensions=client.extensions).status_code == 302


def authorize(client: httpx.Client, url: str) -> httpx.Response:
    """Open the authorize URL as the signed-in browser and press Authorize; the hub's redirect."""
    page = client.get(url, extensions=client.extensions)
    assert page.status_code == 200, page.text[:500]
    form = {"_xsrf": client.cookies.get("_xsrf"),
            "scopes": [html.unescape(scope) for scope in re.findall(r'name="scopes" value="([^"]*)"', page.text)]}
    answer = client.post(url, data=form, extensions=client.extensions)
    assert answer.status_code == 302, answer.text[:500]
    return answer


def tokens_of(hub, user="alice") -> list[dict]:
    answer = httpx.get(f"{hub['hub_api_internal']}/users/{user}/tokens",
                       headers={"Authorization": f"token {hub['admin_token']}"})
    return answer.json()["api_tokens"]


def oauth_tokens(hub) -> set[str]:
    """The ids of alice's tokens that an OAuth client (not the hub's own API) was given."""
    return {t["id"] for t in tokens_of(hub) if t["oauth_client"] != "JupyterHub"}


def accepted(hub, token: str) -> bool:
    status = httpx.get(f"{hub['hub_api_internal']}/user", headers={"Authorization": f"token {token}"}).status_code
    assert status in (200, 403), status
    return status == 200


def assert_like_a_password_login(hub, made: login_record.HubToken, before: datetime) -> None:
    """The stored token as the hub has it: the expiry and scopes a password login gets, nothing beyond alice."""
    model = next(t for t in tokens_of(hub) if t["id"] == made.id)
    expires = login_record.parse_time(model["expires_at"])
    assert LIFETIME - 60 < (expires - before).total_seconds() < LIFETIME + 60
    assert {"access:servers!user=alice", "start:servers!user=alice", "delete:servers!user=alice",
            "read:tokens!user=alice", "tokens!user=alice"} <= set(model["scopes"])
    assert all(scope.endswith("!user=alice") for scope in model["scopes"]), model["scopes"]
    assert model["note"].startswith("jupyterhub-bridge on ") and model["oauth_client"] == "JupyterHub"


def kernel_through(bridge) -> tuple[str, str]:
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=120) as c:
        name = f"t-{uuid.uuid4().hex[:8]}.ipynb"
        r = c.post("/api/sessions", json={"path": name, "name": name, "type": "notebook",
                                          "kernel": {"name": "python3"}})
        assert r.status_code == 201, r.text
        kernel = r.json()["kernel"]["id"]
        with ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels", additional_headers=auth,
                        open_timeout=30) as ws:
            out, _, result = execute(ws, "import os; print(os.environ['JUPYTERHUB_USER']); 6*7")
        c.delete(f"/api/kernels/{kernel}")
    return out, result


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing (./run.sh test installs it as root)")
def test_browser_login_in_chromium_stores_the_bridges_own_token(oauth_hub, secret_file, tmp_path, start_bridge):
    home, before = tmp_path / "home", datetime.now(timezone.utc)
    oauth_before = oauth_tokens(oauth_hub)
    login = Login(oauth_hub, environment(home, oauth_hub, secret_file), *ALICE)
    url = login.authorize_url()
    assert url.startswith(f"https://{oauth_hub['host']}:{oauth_hub['port']}/hub/api/oauth2/authorize?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 32
    assert query["redirect_uri"] == oauth_hub["oauth_client"]["redirect_uri"]
    node = subprocess.run([shutil.which("node") or "node", str(CLIENTS / "oauth_sign_in.mjs"), url, "alice",
                           oauth_hub["users"]["alice"]["password"]], cwd=CLIENTS, capture_output=True, text=True,
                          timeout=180)
    assert node.returncode == 0, node.stderr[-3000:]
    landed = json.loads(node.stdout.strip().splitlines()[-1])
    assert "Go back to the terminal" in landed["text"] and "code=" in landed["url"]
    status, output = login.finish()
    assert status == 0, output
    assert "Exchanged the sign-in's OAuth token for the bridge's own token" in output, output

    made = store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)}).hub_token
    assert made.token not in landed["text"] + output
    assert_like_a_password_login(oauth_hub, made, before)
    assert oauth_tokens(oauth_hub) == oauth_before  # the OAuth token was revoked: none of the client's is left

    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    assert kernel_through(bridge) == ("alice\n", "42")


def test_a_wrong_state_is_refused_and_the_right_one_completes(oauth_hub, secret_file, tmp_path):
    home = tmp_path / "home"
    login = Login(oauth_hub, environment(home, oauth_hub, secret_file), *ALICE)
    url = login.authorize_url()
    redirect = oauth_hub["oauth_client"]["redirect_uri"]
    stranger = httpx.get(redirect, params={"code": "a-code-of-someone-else", "state": "not-this-one"})
    assert stranger.status_code == 400 and "does not belong" in stranger.text
    with browser(oauth_hub) as client:
        sign_in(client, oauth_hub, "alice")
        back = authorize(client, url)
    location = back.headers["location"]
    assert location.startswith(redirect + "?")
    assert httpx.get(location).status_code == 200
    status, output = login.finish()
    assert status == 0, output
    assert f"refused a request to /oauth_callback: its state is not this sign-in's." in output
    assert store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)}).hub_token.user == "alice"


def test_a_hub_without_the_client_says_what_the_admin_adds_and_uses_the_token_page(hub, tmp_path):
    home = tmp_path / "home"
    secret = tmp_path / "secret"
    secret.write_text("a-secret-no-hub-knows\n")
    secret.chmod(0o600)
    pasted = httpx.post(f"{hub['hub_api_internal']}/users/alice/tokens", json={"note": "pasted"},
                        headers={"Authorization": f"token {hub['admin_token']}"}).json()
    login = Login(hub, environment(home, hub, secret), "--token-stdin", stdin=pasted["token"] + "\n")
    status, output = login.finish()
    assert status == 0, output
    line = next(line for line in output.splitlines() if line.startswith("The hub has no OAuth client"))
    assert "invalid_client" in line and "'service-jupyterhub-bridge'" in line, line
    assert "./run.sh admin oauth-config" in line and "token page" in line, line
    assert OPEN not in output  # no browser was sent to a hub that cannot answer it
    assert store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)}).hub_token.user == "alice"


def test_a_secret_file_others_can_read_is_refused(oauth_hub, secret_file, tmp_path):
    secret_file.chmod(0o644)
    status, output = Login(oauth_hub, environment(tmp_path / "home", oauth_hub, secret_file)).finish()
    assert status == 1
    assert f"others can read it (mode -rw-r--r--): run 'chmod 600 {secret_file}'" in output, output
    assert OPEN not in output and not (tmp_path / "home" / "login.json").exists()


def test_pkce_is_what_the_hub_requires(oauth_hub, secret_file, tmp_path):
    """--oauth-require-pkce: without the challenge the hub gives no code; with login's it does."""
    login = Login(oauth_hub, environment(tmp_path / "home", oauth_hub, secret_file), *ALICE)
    url = login.authorize_url()
    parts = urllib.parse.urlsplit(url)
    query = {k: v for k, v in urllib.parse.parse_qsl(parts.query) if not k.startswith("code_challenge")}
    with browser(oauth_hub) as client:
        sign_in(client, oauth_hub, "alice")
        refused = client.get(parts._replace(query=urllib.parse.urlencode(query)).geturl(),
                             extensions=client.extensions)
        assert refused.status_code == 302 and "error=invalid_request" in refused.headers["location"]
        assert "code=" not in refused.headers["location"]
        back = authorize(client, url)
    assert httpx.get(back.headers["location"]).status_code == 200
    status, output = login.finish()
    assert status == 0, output


def test_a_pasted_inherit_token_is_exchanged_and_revoked(oauth_hub, tmp_path):
    home, before = tmp_path / "home", datetime.now(timezone.utc)
    pasted = httpx.post(f"{oauth_hub['hub_api_internal']}/users/alice/tokens",
                        json={"note": "from the token page", "scopes": ["inherit"]},
                        headers={"Authorization": f"token {oauth_hub['admin_token']}"}).json()["token"]
    p = subprocess.run(login_args(oauth_hub, "--token-stdin"), env=environment(home, oauth_hub), input=pasted + "\n",
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Exchanged the pasted token for the bridge's own token" in p.stdout
    assert "revoked the pasted token" in p.stdout
    made = store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)}).hub_token
    assert made.token != pasted and not accepted(oauth_hub, pasted)
    assert_like_a_password_login(oauth_hub, made, before)


def test_a_pasted_token_that_may_not_mint_is_kept(oauth_hub, tmp_path):
    pasted = httpx.post(f"{oauth_hub['hub_api_internal']}/users/alice/tokens",
                        json={"note": "narrow", "scopes": ["access:servers!user=alice", "read:users!user=alice"]},
                        headers={"Authorization": f"token {oauth_hub['admin_token']}"}).json()["token"]
    p = subprocess.run(login_args(oauth_hub, "--token-stdin"), env=environment(tmp_path / "home", oauth_hub),
                       input=pasted + "\n", capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Kept the pasted token as it is: it may not make tokens (no scope tokens!user=alice)" in p.stdout
    assert store.load({"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "home")}).hub_token.token == pasted
    assert accepted(oauth_hub, pasted)


def test_an_admin_registers_the_oauth_client_at_run_time_and_a_user_token_may_not(oauth_hub, tmp_path):
    port = free_port()
    admin = environment(tmp_path / "admin", oauth_hub, **hub_env(oauth_hub),
                        JUPYTERHUB_API_TOKEN=oauth_hub["admin_token"])
    r = subprocess.run([str(ROOT / "run.sh"), "admin", "register-oauth", "--name", "bridge-two", "--port", str(port)],
                       env=admin, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    secret = next(line for line in r.stdout.splitlines() if re.fullmatch(r"[0-9a-f]{64}", line))
    assert "\nc.JupyterHub.oauth_require_pkce = True\n" in r.stdout  # issue 28: what the hub's config still needs
    # The hub knows the client and its secret: login --browser gets as far as the sign-in URL.
    env = environment(tmp_path / "user", oauth_hub, JUPYTER_OAUTH_CLIENT_ID="service-bridge-two",
                      JUPYTER_OAUTH_CLIENT_SECRET=secret, JUPYTER_OAUTH_PORT=str(port))
    login = Login(oauth_hub, env, *ALICE)
    try:
        assert "client_id=service-bridge-two" in login.authorize_url()
    finally:
        stop_processes([login.proc], 10)
    user = {**admin, "JUPYTERHUB_API_TOKEN": oauth_hub["users"]["alice"]["token"]}
    r = subprocess.run([str(ROOT / "run.sh"), "admin", "register-oauth", "--name", "bridge-three"], env=user,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "lacks the scope admin:services" in r.stderr and secret not in r.stdout + r.stderr
