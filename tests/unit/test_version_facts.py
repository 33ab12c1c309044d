"""What a hub of each version has (addon/core/hub_versions.py), the scopes login asks each for, and docs/hub-versions.md's
table checked against the tests that run on each version."""

import argparse
import ast
import re
from pathlib import Path

import pytest

from addon.core import hub_versions
from addon.hub import tokens
from devhub.config import missing_features
from devhub.launcher import HUB_VENVS


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


@pytest.mark.parametrize("version, sharing, pkce, refused", [
    ("4.1.6", True, False, "--sharing: JupyterHub 4.1.6 has no sharing (5.0 and later)"),
    ("5.5.4", False, True, "--oauth-require-pkce: JupyterHub 5.5.4 cannot require PKCE (6.0 and later)"),
    ("5.5.4", True, False, None), ("6.1.1", True, True, None), ("4.1.6", False, False, None),
])
def test_devhub_refuses_what_its_hub_lacks_in_one_line(version, sharing, pkce, refused):
    assert missing_features(version, argparse.Namespace(sharing=sharing, oauth_require_pkce=pkce)) == refused


# ------------------------------------------------------------------ docs/hub-versions.md against the tests
ROOT = Path(__file__).resolve().parents[2]
VERSIONED_TESTS = ROOT / "tests" / "hub" / "test_hub_versions.py"


def marked_tests() -> dict[str, tuple[str, ...]]:
    """Each test of test_hub_versions.py and the versions its hub_versions marker names (`*ALL` resolved)."""
    tree = ast.parse(VERSIONED_TESTS.read_text())
    names = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
             and isinstance(node.value, ast.Tuple)}
    found = {}
    for node in tree.body:
        for mark in getattr(node, "decorator_list", []):
            if isinstance(mark, ast.Call) and ast.unparse(mark.func) == "pytest.mark.hub_versions":
                found[node.name] = tuple(v for arg in mark.args for v in (
                    names[arg.value.id] if isinstance(arg, ast.Starred) else (ast.literal_eval(arg),)))
    return found


def pinned(venv: str) -> str:
    """The JupyterHub version a hub venv's requirements pin (.venv-hub4 -> requirements-hub4.txt)."""
    text = (ROOT / f"requirements-{venv.removeprefix('.venv-')}.txt").read_text()
    return re.search(r"^jupyterhub==(\S+)", text, re.M).group(1)


def version_table() -> tuple[list[str], dict[str, list[str]]]:
    """The versions of the table's heading, and each row's cells by the test it names."""
    lines = [line for line in (ROOT / "docs" / "hub-versions.md").read_text().splitlines()
             if line.startswith("| what works")] or [""]
    rows = (ROOT / "docs" / "hub-versions.md").read_text().split(lines[0], 1)[1].split("\n\n", 1)[0]
    heading = [cell.strip().removeprefix("JupyterHub ") for cell in lines[0].strip("|").split("|")[1:]]
    cells = {}
    for line in rows.strip().splitlines()[1:]:
        first, *rest = [cell.strip() for cell in line.strip("|").split("|")]
        cells[re.search(r"`(test_\w+)`", first).group(1)] = rest
    return heading, cells


def test_the_version_table_names_the_tested_versions_and_tests():
    heading, cells = version_table()
    assert heading == [pinned(HUB_VENVS[v]) for v in sorted(HUB_VENVS, key=hub_versions.version_tuple)]
    assert [h.rsplit(".", 1)[0] for h in heading] == sorted(HUB_VENVS, key=hub_versions.version_tuple)
    marked = marked_tests()
    assert set(cells) == set(marked), "a row for each versioned test, and no other"
    for test, versions in marked.items():
        for minor, cell in zip(sorted(HUB_VENVS, key=hub_versions.version_tuple), cells[test]):
            assert (cell != "–") is (minor in versions) and cell, (test, minor, cell)
