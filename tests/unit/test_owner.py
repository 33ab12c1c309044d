"""Issue 16: one answer to "whose token is this, and what may it do", for every scope form the hub uses."""

import pytest

from addon.core import owner
from addon.core.errors import HubError

ALICE = {"name": "alice", "kind": "user", "groups": ["team"], "token_id": "a7"}


def alice(*scopes: str, **model) -> owner.TokenOwner:
    return owner.from_model({**ALICE, "scopes": list(scopes), **model})


# Whose server: alice's own default one, her named one 'gpu', bob's default one, bob's 'gpu'.
OWN, NAMED, BOBS, BOBS_GPU = ("alice", ""), ("alice", "gpu"), ("bob", ""), ("bob", "gpu")


@pytest.mark.parametrize("scopes, reach", [
    # (scopes of the token, [may reach OWN, NAMED, BOBS, BOBS_GPU])
    (["access:servers"], [True, True, True, True]),  # unfiltered: an admin's
    (["access:servers!user=alice"], [True, True, False, False]),  # login's token: the user's own
    (["access:servers!user"], [True, True, False, False]),  # bare !user: the owner's own
    (["access:servers!server=alice/"], [True, False, False, False]),  # one server: the default one
    (["access:servers!server=alice/gpu"], [False, True, False, False]),
    (["access:servers!server=bob/"], [False, False, True, False]),  # a share of bob's default server
    (["access:servers!server=bob/gpu"], [False, False, False, True]),
    (["access:servers!user=bob"], [False, False, True, True]),
    (["access:servers!group=team"], [True, True, True, True]),  # alice is in team; bob's groups: the hub decides
    (["access:servers!group=other"], [False, False, True, True]),
    (["access:servers!user=alice", "start:servers!user=bob"], [True, True, False, False]),  # start is not reach
    (["access:servers!server"], [False, False, False, False]),  # a server's own token: not a user's server
    (["access:servers!service=x"], [False, False, False, False]),
    (["servers!user=alice", "start:servers", "access:services"], [False, False, False, False]),  # other scopes
    (["inherit"], [True, True, False, False]),  # all of alice's own rights
    (["self"], [True, True, False, False]),
    ([], [False, False, False, False]),
])
def test_may_reach(scopes, reach):
    me = alice(*scopes)
    assert [me.may_reach(u, s) for u, s in (OWN, NAMED, BOBS, BOBS_GPU)] == reach


@pytest.mark.parametrize("scopes, start, stop, read", [
    # (scopes, may start / stop / read the state of [OWN, BOBS])
    (["servers!user=alice"], [True, False], [True, False], [True, False]),  # JupyterHub 5 (and as asked for)
    (["start:servers!user=alice", "delete:servers!user=alice", "read:servers!user=alice"],  # 6, expanded
     [True, False], [True, False], [True, False]),
    (["start:servers!user=alice"], [True, False], [False, False], [False, False]),
    (["delete:servers!user=alice"], [False, False], [True, False], [False, False]),
    (["read:servers!user=alice"], [False, False], [False, False], [True, False]),
    (["servers"], [True, True], [True, True], [True, True]),  # an admin's
    (["admin:servers"], [True, True], [True, True], [True, True]),
    (["start:servers!user=bob"], [False, True], [False, False], [False, False]),
    (["delete:servers!user=bob", "read:servers!user=bob"], [False, False], [False, True], [False, True]),
    (["start:servers!server=bob/"], [False, True], [False, False], [False, False]),
    (["start:servers!server=bob/other"], [False, False], [False, False], [False, False]),
    (["start:servers!group=team"], [True, True], [False, False], [False, False]),  # bob may be in team: let try
    (["start:servers!group=other", "servers!group=other"], [False, True], [False, True], [False, True]),
    (["access:servers!server=bob/", "start:servers!user=alice"], [True, False], [False, False], [False, False]),
    (["inherit"], [True, False], [True, False], [True, False]),
    ([], [False, False], [False, False], [False, False]),
])
def test_may_start_stop_and_read(scopes, start, stop, read):
    me = alice(*scopes)
    assert [me.may_start(u, s) for u, s in (OWN, BOBS)] == start
    assert [me.may_stop(u, s) for u, s in (OWN, BOBS)] == stop
    assert [me.may_read(u, s) for u, s in (OWN, BOBS)] == read


@pytest.mark.parametrize("scopes, mint, shares", [
    (["tokens!user=alice", "read:users:shares!user=alice"], True, True),  # login's token
    (["read:tokens!user=alice", "users:shares!user=alice"], False, True),  # reading tokens is not making them
    (["tokens"], True, False),
    (["tokens!user=bob", "read:users:shares!user=bob"], False, False),
    (["tokens!server=alice/", "read:users:shares!server=alice/"], False, False),  # a server filter: no user's
    (["tokens!group=team", "read:users:shares!group=team"], True, True),
    (["tokens!group=other"], False, False),
    (["inherit"], True, True),
    (["read:users!user=alice", "read:users:name!user=alice"], False, False),
])
def test_may_mint_and_list_shares(scopes, mint, shares):
    me = alice(*scopes)
    assert (me.may_mint(), me.may_list_shares()) == (mint, shares)


def test_the_model_as_the_hub_gives_it():
    me = owner.from_model({"name": "svc", "kind": "service", "scopes": ["access:servers!user=alice"],
                           "token_id": None, "session_id": None})
    assert (me.name, me.kind, me.groups, me.token_id) == ("svc", "service", frozenset(), None)
    assert me.may_reach("alice", "") and not me.may_reach("svc", "")
    bare = owner.from_model({"name": "alice"})  # no kind, no scopes, no groups listed
    assert (bare.kind, bare.scopes, bare.may_reach("alice", "")) == ("user", frozenset(), False)
    assert not alice("access:servers!group=team", groups=[]).may_reach("alice", "")  # groups not readable


class AskedHub:
    """The two calls owner() may make, and how often it made them."""

    def __init__(self, token_model: dict | Exception):
        self.token_model_answer, self.calls = token_model, []

    async def whoami(self):
        self.calls.append("whoami")
        return {**ALICE, "scopes": ["access:servers!user=alice"]}

    async def token_model(self, user, token_id):
        self.calls.append(f"token_model {user} {token_id}")
        if isinstance(self.token_model_answer, Exception):
            raise self.token_model_answer
        return self.token_model_answer


@pytest.mark.parametrize("answer, expires_at, known", [
    ({"expires_at": "2026-12-29T13:00:00Z"}, "2026-12-29T13:00:00Z", True),
    ({"expires_at": None}, None, True),  # never
    (HubError(403, "Action is not authorized with current scopes"), None, False),  # no read:tokens
])
async def test_the_hub_is_asked_once_and_for_the_expiry_only_when_wanted(answer, expires_at, known):
    hub = AskedHub(answer)
    me = await owner.whose_token(hub)
    assert hub.calls == ["whoami"] and me.name == "alice" and not me.expiry_known
    hub.calls.clear()
    me = await owner.whose_token(hub, expiry=True)
    assert hub.calls == ["whoami", "token_model alice a7"]
    assert (me.expires_at, me.expiry_known) == (expires_at, known)


@pytest.mark.parametrize("name", ["al\x1bice", "alice\n", "ali\u202ece", "a\u2028b", "\x07"])
def test_a_user_name_with_control_characters_is_refused(name):
    with pytest.raises(HubError, match="with control characters: refused") as e:
        owner.from_model({"name": name})
    assert "\x1b" not in e.value.message and "\n" not in e.value.message and e.value.status == 0


@pytest.mark.parametrize("name", ["alice", "élodie", "李雷", "a.b-c_d@example.org"])
def test_a_user_name_of_any_script_is_taken(name):
    assert owner.from_model({"name": name}).name == name
