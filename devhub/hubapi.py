"""Minimal JupyterHub REST client (stdlib only) for the hub's internal plain-http API."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request


class HubAPIError(RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: str):
        super().__init__(f"{method} {url} -> {status}: {body[:500]}")
        self.status = status
        self.body = body


class HubAPI:
    def __init__(self, api_url: str, token: str, timeout: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body=None, ok=(200, 201, 202, 204)):
        url = self.api_url + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode("utf-8", "replace")
        if status not in ok:
            raise HubAPIError(method, url, status, text)
        return status, (json.loads(text) if text.strip() else None)

    @staticmethod
    def q(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def info(self):
        return self.request("GET", "/")[1]

    def ensure_user(self, name: str) -> None:
        self.request("POST", f"/users/{self.q(name)}", ok=(201, 409))  # 409: exists already

    def new_token(self, name: str, note: str) -> str:
        # No roles/scopes given: the token inherits all of the user's permissions.
        return self.request("POST", f"/users/{self.q(name)}/tokens", {"note": note})[1]["token"]

    def start_server(self, name: str) -> int:
        # 201 started, 202 pending; 400 "already running" is fine too.
        status, _ = self.request("POST", f"/users/{self.q(name)}/server", ok=(201, 202, 400))
        return status

    def user(self, name: str) -> dict:
        return self.request("GET", f"/users/{self.q(name)}")[1]
