"""What a JupyterHub of a given version has, for the subcommands and the bridge that meet hubs of every version a
user may have (4.1, 5.x, 6.x; docs/hub-versions.md): pure functions of the version string the hub gives in
GET <base>hub/api. An empty or unreadable version is taken for a hub that has everything."""

import re

# The first version that defines a scope the bridge asks for. An older hub answers 500 to a token request that
# names a scope it does not define (4.1 does), not the 403 the bridge narrows on, so login asks for only these.
SCOPE_SINCE = {"read:users:shares": (5, 0)}
SHARING_SINCE = (5, 0)
# 5.5.1 fixed a high-severity bug of sharing: the bridge warns, once, when it uses sharing on an older 5.x hub.
SHARING_FIXED = (5, 5, 1)


def version_tuple(version: str) -> tuple[int, ...] | None:
    """(6, 1, 1) for '6.1.1', (5, 0, 0) for '5.0.0b2'; None when the hub did not say a version."""
    numbers = re.match(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", version or "")
    return tuple(int(n or 0) for n in numbers.groups()) if numbers else None


def major(version: str) -> int | None:
    """The major number of a version such as '6.1.1' or '5.0.0b2'; None when there is none."""
    found = version_tuple(version)
    return found[0] if found else None


def at_least(version: str, since: tuple[int, ...]) -> bool:
    """Does this hub have what came in `since`? A hub that does not say its version is taken for a new one."""
    found = version_tuple(version)
    return found is None or found >= since


def defines(version: str, scope: str) -> bool:
    """Does this hub define the scope (its filter, `!user=...`, left aside)?"""
    return at_least(version, SCOPE_SINCE.get(scope.split("!", 1)[0], (0,)))


def has_sharing(version: str) -> bool:
    return at_least(version, SHARING_SINCE)


def sharing_warning(version: str) -> str | None:
    """The line to warn with, once, when servers shared on this hub are used; None on a hub with the fix."""
    if not has_sharing(version) or at_least(version, SHARING_FIXED):
        return None
    return (f"JupyterHub {version} has a high-severity sharing bug fixed in 5.5.1: ask the hub's admin to upgrade "
            "before relying on shared servers")
