"""The benchmark's table: one column per target, ratios of the bridge to direct and to plain mitmdump, each figure
with a goal (issue 22) marked ✗ when the bridge misses it, and a closing block of the goals with ✓ or ✗."""

from dataclasses import dataclass

from bench import measure

MiB = 1024 * 1024
TARGETS = ("direct", "plain", "bridge", "web")
REST_ONE, REST_16 = "proxy CPU per REST request, 1 client (ms)", "proxy CPU per REST request, 16 clients (ms)"
RPS, EXEC = "REST 16 clients (req/s)", "kernel execute 1+1 p50 (ms)"
WS_CPU, WS_GROWTH, FILES_GROWTH = "proxy CPU per MB of kernel output (ms)", "  RSS growth (MiB)", \
    "  RSS growth up+down (MiB)"


@dataclass(frozen=True)
class Goal:
    """A figure of one target held against plain mitmdump's (ratio or added time) or against a bound."""
    name: str
    row: str  # the table row it judges
    kind: str  # "ratio_max", "ratio_min" (target/plain), "added_max" (target - plain), "value_max"
    limit: float
    target: str = "bridge"

    def judge(self, value, plain) -> tuple[bool | None, str]:
        """(met, the figure as shown); met is None when the run lacks the figure."""
        if value is None or (self.kind != "value_max" and not plain):
            return None, "-"
        if self.kind == "ratio_max":
            return value / plain <= self.limit, f"{value / plain:.2f}x (goal ≤ {self.limit:.2f}x)"
        if self.kind == "ratio_min":
            return value / plain >= self.limit, f"{value / plain:.2f}x (goal ≥ {self.limit:.2f}x)"
        if self.kind == "added_max":
            return value - plain <= self.limit, f"{value - plain:+.2f} ms over plain (goal ≤ +{self.limit:.1f} ms)"
        return value <= self.limit, f"{value:.1f} MiB (goal ≤ {self.limit:g} MiB)"


GOALS = [  # issue 22; memory "as flat as today": the bounds the README's earlier goals set
    Goal("CPU per REST request, one keep-alive client", REST_ONE, "ratio_max", 1.10),
    Goal("CPU per REST request, 16 concurrent clients", REST_16, "ratio_max", 1.10),
    Goal("REST throughput, 16 concurrent clients", RPS, "ratio_min", 0.95),
    Goal("kernel 1+1 round trip (p50)", EXEC, "added_max", 0.3),
    Goal("kernel output stream, proxy CPU per MB", WS_CPU, "ratio_max", 1.10),
    Goal("RSS growth after the kernel output, WebSocket open", WS_GROWTH, "value_max", 20),
    Goal("RSS growth after upload + download", FILES_GROWTH, "value_max", 20),
    Goal("./run.sh web: RSS growth after the kernel output", WS_GROWTH, "value_max", 50, "web"),
    Goal("./run.sh web: RSS growth after upload + download", FILES_GROWTH, "value_max", 50, "web"),
]


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def rows(args) -> list[tuple]:
    """(label, figure of one target's results); a figure that a target lacks is shown as '-'."""
    p = measure.percentile
    return [
        ("REST GET p50 (ms)", lambda x: p(x["rest_ms"], 50)),
        ("REST GET p99 (ms)", lambda x: p(x["rest_ms"], 99)),
        (RPS, lambda x: sum(x["rps"]) / len(x["rps"])),
        (REST_ONE, lambda x: 1000 * x["rest_cpu"] / x["rest_requests"]),
        (REST_16, lambda x: 1000 * x["conc_cpu"] / x["conc_requests"]),
        (EXEC, lambda x: p(x["exec_ms"], 50)),
        ("kernel execute 1+1 p99 (ms)", lambda x: p(x["exec_ms"], 99)),
        (f"kernel output {args.ws_mb} MB (MB/s)", lambda x: x["ws_mbps"][0]),
        (WS_CPU, lambda x: 1000 * x["ws_cpu_per_mb"]),
        ("  RSS before (MiB)", lambda x: x["ws_rss_before"] / MiB),
        ("  RSS after, WS open (MiB)", lambda x: x["ws_rss_after"] / MiB),
        (WS_GROWTH, lambda x: (x["ws_rss_after"] - x["ws_rss_before"]) / MiB),
        ("  peak RSS (MiB)", lambda x: x["ws_rss_peak"] / MiB),
        (f"upload {args.file_mb} MB /api/contents (MB/s)", lambda x: x["up_mbps"][0]),
        (f"download {args.file_mb} MB /files (MB/s)", lambda x: x["down_mbps"][0]),
        ("  peak RSS during up+down (MiB)", lambda x: x["files_peak"] / MiB),
        (FILES_GROWTH, lambda x: (x["files_rss_after"] - x["files_rss_before"]) / MiB),
        ("RSS growth, whole run (MiB)", lambda x: (x["rss_end"] - x["rss_start"]) / MiB),
    ]


def figures(results: dict, fn) -> dict:
    out = {}
    for name in results:
        try:
            out[name] = fn(results[name])
        except (KeyError, ZeroDivisionError, TypeError):
            out[name] = None
    return out


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def marked(label: str, vals: dict) -> str:
    """The bridge/plain ratio (the added time, where the goal is one), with ✗ when the bridge misses the goal."""
    bridge, plain = vals.get("bridge"), vals.get("plain")
    text = "-" if "RSS" in label else ratio(bridge, plain)  # memory: see the goals
    for g in GOALS:
        if g.row == label and g.target == "bridge":
            if g.kind == "added_max" and bridge is not None and plain is not None:
                text = f"{bridge - plain:+.2f} ms"
            return f"{text} ✗" if g.judge(bridge, plain)[0] is False else text
    return text


def goal_column(label: str) -> str:
    g = next((g for g in GOALS if g.row == label and g.target == "bridge"), None)
    if g is None:
        return ""
    return {"ratio_max": f"≤ {g.limit:.2f}x", "ratio_min": f"≥ {g.limit:.2f}x",
            "added_max": f"≤ +{g.limit:.1f} ms", "value_max": f"≤ {g.limit:g} MiB"}[g.kind]


def notes(results: dict) -> list[str]:
    """The time the proxies add over direct access, at the median."""
    rest = figures(results, lambda x: measure.percentile(x["rest_ms"], 50))
    ex = figures(results, lambda x: measure.percentile(x["exec_ms"], 50))
    out = []
    if all(rest.get(k) is not None for k in ("direct", "plain", "bridge")):
        out.append(f"added REST p50 over direct: plain {rest['plain'] - rest['direct']:+.2f} ms, "
                   f"bridge {rest['bridge'] - rest['direct']:+.2f} ms "
                   f"(bridge - plain {rest['bridge'] - rest['plain']:+.2f} ms)")
    if all(ex.get(k) is not None for k in ("direct", "plain", "bridge")):
        out.append(f"added kernel execute p50 over direct: plain {ex['plain'] - ex['direct']:+.2f} ms, "
                   f"bridge {ex['bridge'] - ex['direct']:+.2f} ms")
    return out


def against_goals(results: dict, args) -> str:
    """One line per goal of issue 22: ✓ or ✗ (? when the run lacks the figure) and the figure."""
    by_label = dict(rows(args))
    lines = ["Against the goals (issue 22; the bridge, or ./run.sh web where named, against plain mitmdump):"]
    for g in GOALS:
        vals = figures(results, by_label[g.row])
        met, text = g.judge(vals.get(g.target), vals.get("plain"))
        lines.append(f"  {'?' if met is None else '✓' if met else '✗'} {g.name}: {text}")
    return "\n".join(lines)


def table(results: dict, args) -> str:
    names = [n for n in TARGETS if n in results]
    lines = [["", *names, "bridge/direct", "bridge/plain", "goal"]]
    for label, fn in rows(args):
        vals = figures(results, fn)
        to_direct = "-" if "RSS" in label else ratio(vals.get("bridge"), vals.get("direct"))
        lines.append([label, *(fmt(vals[n]) for n in names), to_direct, marked(label, vals), goal_column(label)])
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(lines[0]))]
    text = "\n".join("  ".join(str(c).ljust(w) if i in (0, len(row) - 1) else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in lines)
    return "\n".join([text, *notes(results), "", against_goals(results, args)])
