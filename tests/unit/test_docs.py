"""The README and docs/ stay navigable: every relative link resolves to a file and, with a `#anchor`, to a heading
of it (GitHub's slugs), and docs/settings.md's table names every setting of addon/core/options.py and nothing else."""

import re
from pathlib import Path

import pytest

from addon.core import options

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without code blocks, where `#` and `[..](..)` are not markdown."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(prose(text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")  # GitHub numbers a repeated heading
    return out


def broken_links(page: Path, text: str) -> list[str]:
    broken = []
    for target in LINK.findall(CODE_SPAN.sub("", prose(text))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading with that anchor")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page, page.read_text()) == []


@pytest.mark.parametrize(("text", "broken"), [
    ("[ok](other.md) [ok](other.md#the-login-token) [ok](#here) [web](https://x.org/#nope)\n# Here", []),
    ("[gone](missing.md)", ["missing.md: no such file"]),
    ("[stale](other.md#renewal)", ["other.md#renewal: no heading with that anchor"]),
    ("[self](#nowhere)\n# Here", ["#nowhere: no heading with that anchor"]),
    ("```\n[in code](missing.md)\n# not a heading\n```\nand `[span](missing.md)`", []),
    ("[second](other.md#the-login-token-1) [code](other.md#runsh-login---browser)", []),
], ids=["resolve", "missing-file", "missing-anchor", "missing-own-anchor", "code-is-not-a-link", "github-slugs"])
def test_a_broken_link_is_caught(tmp_path, text, broken):
    (tmp_path / "other.md").write_text("# The login token\n\n## The login token\n\n### `./run.sh login --browser`\n")
    page = tmp_path / "page.md"
    page.write_text(text)
    assert broken_links(page, text) == broken


def table_envs(text: str) -> list[str]:
    """The first column of the settings table: `| `NAME` | ...`."""
    return re.findall(r"^\| `([A-Z0-9_]+)` \|", text, re.M)


def test_the_settings_page_names_every_setting_and_nothing_else():
    named = table_envs((ROOT / "docs" / "settings.md").read_text())
    assert sorted(named) == sorted(o.env for o in options.OPTIONS)


def test_the_settings_check_would_catch_a_missing_or_stray_row():
    rows = "| `JUPYTER_PROXY_PORT` | `jupyter_proxy_port` | `8000` | The port. |\n| `NOT_A_SETTING` | x | y | z |"
    assert table_envs(rows) == ["JUPYTER_PROXY_PORT", "NOT_A_SETTING"]
    assert sorted(table_envs(rows)) != sorted(o.env for o in options.OPTIONS)
