from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.core import route

PREFIX = "/user/alice/"


@pytest.mark.parametrize("target, upstream", [
    ("/api/status", "/user/alice/api/status"),
    ("/api/kernels/k1/channels?session_id=s", "/user/alice/api/kernels/k1/channels?session_id=s"),
    ("/api/contents?1795648608158", "/user/alice/api/contents?1795648608158"),
    ("/files/data/x.csv", "/user/alice/files/data/x.csv"),
    ("/kernelspecs/python3/logo-64x64.png", "/user/alice/kernelspecs/python3/logo-64x64.png"),
    ("/terminals/websocket/1", "/user/alice/terminals/websocket/1"),
    ("/lab", "/user/alice/lab"),
    ("/tree", "/user/alice/tree"),
    ("/static/x.js", "/user/alice/static/x.js"),
    ("/", "/user/alice/"),
    ("/?token=abc", "/user/alice/?token=abc"),
    ("/user/alice/api/status", "/user/alice/api/status"),
    ("/user/alice", "/user/alice"),
    ("/user/alicex/api", "/user/alice/user/alicex/api"),
    ("/user/bob/api/status", "/user/alice/user/bob/api/status"),
    ("/api/contents/a%20b.ipynb", "/user/alice/api/contents/a%20b.ipynb"),
    ("/api/contents/...ipynb", "/user/alice/api/contents/...ipynb"),
])
def test_to_upstream(target, upstream):
    assert route.to_upstream(target, PREFIX) == upstream


@pytest.mark.parametrize("target", [
    "/api/../../hub/api/user", "/api/%2e%2e/%2E%2E/hub/api", "/api/%252e%252e/x", "/./api",
    "/api/..", "/api\\..\\x", "/api//x", "//evil.example/x", "/api/..%2f..%2fhub", "api/status",
])
def test_traversal_refused(target):
    with pytest.raises(route.Refused) as e:
        route.to_upstream(target, PREFIX)
    assert e.value.status == 400


@pytest.mark.parametrize("target, base", [("/hub/api/users", "/"), ("/hub", "/"), ("/jupyter/hub/api", "/jupyter/")])
def test_hub_not_reachable(target, base):
    with pytest.raises(route.Refused) as e:
        route.to_upstream(target, f"{base}user/alice/", base)
    assert e.value.status == 404


def test_named_server_and_base_url_prefix():
    assert route.to_upstream("/api/status", "/jupyter/user/alice/gpu/", "/jupyter/") == \
        "/jupyter/user/alice/gpu/api/status"


segment = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#"), max_size=6)


@given(st.lists(st.one_of(segment, st.sampled_from(["..", ".", "%2e%2e", "%2E.", "", "%252e%252e", "\\.."])),
                max_size=6))
def test_no_path_leaves_the_prefix(segments):
    """Whatever a client sends, what goes upstream stays in the user's prefix once the hub's proxy
    normalises it (it decodes %2e and resolves dot segments), or is refused."""
    target = "/" + "/".join(quote(s, safe="%\\.") for s in segments)
    try:
        upstream = route.to_upstream(target, PREFIX)
    except route.Refused:
        return
    path = route.split_target(upstream)[0]
    resolved = []
    for part in path.replace("%2e", ".").replace("%2E", ".").split("/"):
        if part == "..":
            if resolved:
                resolved.pop()
        elif part != ".":
            resolved.append(part)
    assert "/".join(resolved).startswith(PREFIX.rstrip("/"))


HUB = frozenset({"https://jupyterhub:8443", "https://10.0.0.5:8443"})


@pytest.mark.parametrize("location, client", [
    ("/user/alice/lab?", "/lab?"),
    ("/user/alice/tree/x.ipynb", "/tree/x.ipynb"),
    ("/user/alice", "/"),
    ("https://jupyterhub:8443/user/alice/lab", "/lab"),
    ("https://10.0.0.5:8443/user/alice/api/x?a=1#f", "/api/x?a=1#f"),
    ("https://JupyterHub:8443/hub/login?next=%2Fuser%2Falice%2F", "/hub/login?next=%2Fuser%2Falice%2F"),
    ("https://example.org/user/alice/lab", "https://example.org/user/alice/lab"),
    ("lab", "lab"),
])
def test_rewrite_location(location, client):
    assert route.rewrite_location(location, PREFIX, HUB) == client


@pytest.mark.parametrize("cookie, client", [
    ("_xsrf=abc; Path=/user/alice/", "_xsrf=abc; Path=/"),
    ("_xsrf=abc; Path=/user/alice; Secure", "_xsrf=abc; Path=/; Secure"),
    ("jupyterhub-user-alice=x; HttpOnly; path=/user/alice/lab; Secure", "jupyterhub-user-alice=x; HttpOnly; path=/; Secure"),
    ("jupyterhub-session-id=x; Path=/", "jupyterhub-session-id=x; Path=/"),
    ("hub=x; Path=/hub/", "hub=x; Path=/hub/"),
    ("a=b", "a=b"),
])
def test_rewrite_set_cookie(cookie, client):
    assert route.rewrite_set_cookie(cookie, PREFIX) == client


OWN = frozenset({"http://127.0.0.1:8000", "http://localhost:8000"})


@pytest.mark.parametrize("referer, upstream", [
    ("http://127.0.0.1:8000/lab/tree?x=1", "https://jupyterhub:8443/user/alice/lab/tree?x=1"),
    ("http://localhost:8000/user/alice/lab", "https://jupyterhub:8443/user/alice/lab"),
    ("https://example.org/page", "https://example.org/page"),
    ("http://127.0.0.1:8000/api/../../hub", None),
])
def test_rewrite_referer(referer, upstream):
    assert route.rewrite_referer(referer, OWN, "https://jupyterhub:8443", PREFIX) == upstream
