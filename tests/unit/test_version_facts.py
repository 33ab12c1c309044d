"""What a hub of each version has (addon/core/hub_versions.py), and the scopes login asks each for."""

import pytest

from addon.core import hub_versions
from addon.hub import tokens


@pytest.mark.parametrize("version, parsed, major", [
    ("6.1.1", (6, 1, 1), 6), ("5.3.0", (5, 3, 0), 5), ("4.1.6", (4, 1, 6), 4), ("10.0.0b1", (10, 0, 0), 10),
    ("6", (6, 0, 0), 6), ("5.5", (5, 5, 0), 5), ("", None, None), ("unknown", None, None),
])
def test_version(version, parsed, major):
    assert hub_versions.version_tuple(version) == parsed
    assert hub_versions.major(version) == major


@pytest.mark.parametrize("version, sharing, warned", [
    ("4.1.6", False, False), ("5.0.0", True, True), ("5.5.0", True, True), ("5.5.1", True, False),
    ("6.1.1", True, False), ("", True, False),  # a hub that does not say its version: taken for a new one
])
def test_sharing(version, sharing, warned):
    assert hub_versions.has_sharing(version) is sharing
    warning = hub_versions.sharing_warning(version)
    assert (warning is not None) is warned
    assert warning is None or (version in warning and "5.5.1" in warning)


@pytest.mark.parametrize("version, asked", [
    ("4.1.6", ["access:servers", "servers", "read:users", "tokens"]),  # 4.1 answers 500 to read:users:shares
    ("5.0.0", ["access:servers", "servers", "read:users", "read:users:shares", "tokens"]),
    ("6.1.1", ["access:servers", "servers", "read:users", "read:users:shares", "tokens"]),
    ("", ["access:servers", "servers", "read:users", "read:users:shares", "tokens"]),
])
def test_login_asks_only_for_the_scopes_the_hub_defines(version, asked):
    assert tokens.wanted_scopes("alice", version) == [f"{scope}!user=alice" for scope in asked]
    note = tokens.undefined_note(version)
    assert (note == f"JupyterHub {version} does not define read:users:shares: asking without") if len(asked) < 5 \
        else note is None
