"""Reading a cProfile of mitmdump (bench/profile.py): per-request microseconds of the top functions, of each
addon's hooks (as called by mitmproxy's addon manager, callees included), of the hook dispatch itself, and of
the code by area (own time), side by side for plain mitmdump and the bridge."""

import pstats
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGER = "mitmproxy/addonmanager.py"
# what the manager calls besides the hooks (contextlib: its safecall() around each addon)
NOT_HOOKS = (MANAGER, "mitmproxy/hooks.py", "/inspect.py", "/contextlib.py")
AREAS = [  # (area, path fragment), first match wins; own time of a function by the file it is in
    ("bridge: addon/", f"{ROOT}/addon/"), ("plain_addon", "bench/plain_addon.py"),
    ("mitmproxy addon manager", MANAGER), ("mitmproxy addons", "mitmproxy/addons/"),
    ("mitmproxy proxy layers", "mitmproxy/proxy/"), ("mitmproxy http/net", "mitmproxy/net/"),
    ("mitmproxy (other)", "mitmproxy/"), ("h11/h2/wsproto", "/h11/"), ("h11/h2/wsproto", "/h2/"),
    ("h11/h2/wsproto", "/wsproto/"), ("TLS (OpenSSL, cryptography)", "/OpenSSL/"), ("asyncio", "/asyncio/"),
    ("logging", "/logging/"), ("re", "/re/"), ("stdlib (other)", "/lib/python3"), ("C builtins", "~"),
]
Key = tuple[str, int, str]
IDLE = ("~", 0, "<method 'poll' of 'select.epoll' objects>")  # the event loop waiting: no work


def short(key: Key) -> str:
    file, line, name = key
    if file == "~":
        return name
    for cut in ("site-packages/", f"{ROOT}/", "lib/python3.13/", "lib/python3.12/"):
        if cut in file:
            file = file.split(cut, 1)[1]
            break
    return f"{file}:{line}({name})"


def module_of(file: str) -> str:
    """The addon module a hook is in: addon/rewrite.py, bench/plain_addon.py, mitmproxy/addons/… as one."""
    if "mitmproxy/addons/" in file:
        return "mitmproxy's own addons"
    return file.split(f"{ROOT}/", 1)[1] if f"{ROOT}/" in file else short((file, 0, ""))


def area(file: str) -> str:
    if f"{ROOT}/addon/" in file:
        return "bridge: " + file.split(f"{ROOT}/", 1)[1]
    return next((name for name, part in AREAS if part in file), "other")


def hooks(stats: dict) -> dict[Key, float]:
    """Seconds in each hook function as the addon manager called it, callees included."""
    out = defaultdict(float)
    for key, (_, _, _, _, callers) in stats.items():
        if key[0] == "~" or any(part in key[0] for part in NOT_HOOKS):
            continue
        for caller, (_, _, _, ct) in callers.items():
            if caller[0].endswith(MANAGER):
                out[key] += ct
    return out


def dispatch(stats: dict) -> float:
    """Seconds of the addon manager's own work: its functions' own time and what they call besides the hooks."""
    total = 0.0
    for key, (_, _, tt, _, callers) in stats.items():
        if key[0].endswith(MANAGER):
            total += tt
        elif key[0] == "~" or any(part in key[0] for part in NOT_HOOKS[1:]):
            total += sum(edge[3] for caller, edge in callers.items() if caller[0].endswith(MANAGER))
    return total


def summary(path: Path, requests: int) -> dict:
    stats = pstats.Stats(str(path)).stats
    stats.pop(IDLE, None)
    us = 1e6 / requests
    by_hook, by_module, by_area = hooks(stats), defaultdict(float), defaultdict(float)
    for key, t in by_hook.items():
        by_module[module_of(key[0])] += t * us
    for key, (_, _, tt, _, _) in stats.items():
        by_area[area(key[0])] += tt * us
    return {"total": sum(s[2] for s in stats.values()) * us, "calls": sum(s[1] for s in stats.values()) * us / 1e6,
            "dispatch": dispatch(stats) * us,
            "hooks": {short(k): t * us for k, t in by_hook.items()}, "modules": dict(by_module),
            "areas": dict(by_area), "stats": stats, "us": us}


def top(s: dict, n: int, column: int) -> list[str]:
    """The n functions with the most own (column 2) or cumulative (3) time, in µs per request."""
    rows = sorted(s["stats"].items(), key=lambda kv: kv[1][column], reverse=True)[:n]
    return [f"  {v[column] * s['us']:9.1f} µs  {v[2] * s['us']:9.1f} own  {v[1] * s['us'] / 1e6:8.2f} calls/req  "
            f"{short(k)}" for k, v in rows]


def more_calls(plain: dict, bridge: dict, n: int) -> list[str]:
    """The functions the bridge calls most more often per request than plain mitmdump (exact counts)."""
    def per_request(s):
        return {short(k): v[1] * s["us"] / 1e6 for k, v in s["stats"].items()}
    p, b = per_request(plain), per_request(bridge)
    extra = sorted(((b[k] - p.get(k, 0.0), k) for k in b), reverse=True)[:n]
    return [f"  {d:+8.1f} calls/req ({p.get(k, 0.0):7.1f} -> {b[k]:7.1f})  {k}" for d, k in extra]


def side_by_side(title: str, plain: dict, bridge: dict, total_b: float) -> list[str]:
    lines = [title, f"  {'':58} {'plain':>9} {'bridge':>9} {'extra':>9} {'share':>6}"]
    for name in sorted(set(plain) | set(bridge), key=lambda k: -(bridge.get(k, 0))):
        p, b = plain.get(name, 0.0), bridge.get(name, 0.0)
        if max(p, b) >= 0.5:
            lines.append(f"  {name[:58]:58} {p:9.1f} {b:9.1f} {b - p:+9.1f} {100 * b / total_b:5.1f}%")
    return lines


def report(plain: dict, bridge: dict, n: int) -> str:
    """The whole reading: figures are µs of the main thread's busy wall time per request (the event loop's wait
    left out), under the profiler, which inflates each function call."""
    tb = bridge["total"]
    out = [f"main thread busy per request under cProfile: plain {plain['total']:.0f} µs, bridge {tb:.0f} µs "
           f"({tb / plain['total']:.2f}x, +{tb - plain['total']:.0f} µs)",
           f"function calls per request (exact, unlike the times): plain {plain['calls']:.0f}, "
           f"bridge {bridge['calls']:.0f} (+{bridge['calls'] - plain['calls']:.0f})",
           f"addon manager dispatch (own work, hooks excluded): plain {plain['dispatch']:.1f} µs, "
           f"bridge {bridge['dispatch']:.1f} µs", ""]
    out += side_by_side("hooks by addon module (µs per request, callees included):",
                        plain["modules"], bridge["modules"], tb) + [""]
    out += side_by_side("hook functions (µs per request, callees included):", plain["hooks"], bridge["hooks"], tb)
    out += [""] + side_by_side("own time by area (µs per request):", plain["areas"], bridge["areas"], tb)
    out += ["", f"the {n} functions with the most extra calls per request (bridge - plain):",
            *more_calls(plain, bridge, n)]
    for name, s in (("plain", plain), ("bridge", bridge)):
        out += ["", f"{name}: top {n} by cumulative time (µs per request)", *top(s, n, 3),
                "", f"{name}: top {n} by own time (µs per request)", *top(s, n, 2)]
    return "\n".join(out)
