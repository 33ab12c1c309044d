"""The ground floor holds nothing from above: a module in addon/core/ imports only addon/core/, the standard
library and the parsing libraries the runtime pins (cryptography, h11, brotli), never the Hub client, the commands,
the login file or the addons (issue 27)."""

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "addon" / "core"
PARSERS = {"cryptography", "h11", "brotli"}


def imported(tree: ast.AST) -> list[str]:
    """Every module a file imports, at any depth (an import inside a function counts)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names += [f"{base}.{alias.name}" if base == "addon" else base for alias in node.names]
    return names


def above_core(name: str) -> bool:
    top = name.split(".")[0]
    if top == "addon":
        return not name.startswith("addon.core")
    return top not in sys.stdlib_module_names and top not in PARSERS


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_a_core_module_imports_nothing_above_the_core(module):
    assert [n for n in imported(ast.parse(module.read_text())) if above_core(n)] == []


@pytest.mark.parametrize(("source", "refused"), [
    ("from addon.hub import api", True),
    ("from addon.hub.api import HubError", True),
    ("from addon import store", True),
    ("import addon.commands.launch", True),
    ("from addon.config import Config", True),
    ("def f():\n    from addon.rewrite import OWN", True),
    ("import mitmproxy", True),
    ("from addon.core import owner", False),
    ("from addon.core.errors import HubError", False),
    ("import json", False),
    ("from cryptography import x509", False),
])
def test_the_rule_sees_an_import_from_above(source, refused):
    assert any(above_core(n) for n in imported(ast.parse(source))) == refused
