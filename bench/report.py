"""The benchmark's table: one column per target, ratios of the bridge to direct and to plain mitmdump."""

from bench import measure

MiB = 1024 * 1024
TARGETS = ("direct", "plain", "bridge", "web")


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def rows(args) -> list[tuple]:
    """(label, figure of one target's results); a figure that a target lacks is shown as '-'."""
    p = measure.percentile
    return [
        ("REST GET p50 (ms)", lambda x: p(x["rest_ms"], 50)),
        ("REST GET p99 (ms)", lambda x: p(x["rest_ms"], 99)),
        ("REST 16 clients (req/s)", lambda x: sum(x["rps"]) / len(x["rps"])),
        ("proxy CPU per REST request (ms)",
         lambda x: 1000 * (x["rest_cpu"] + x["conc_cpu"]) / (x["rest_requests"] + x["conc_requests"])),
        ("kernel execute p50 (ms)", lambda x: p(x["exec_ms"], 50)),
        ("kernel execute p99 (ms)", lambda x: p(x["exec_ms"], 99)),
        (f"kernel output {args.ws_mb} MB (MB/s)", lambda x: x["ws_mbps"][0]),
        ("  RSS before (MiB)", lambda x: x["ws_rss_before"] / MiB),
        ("  RSS after, WS open (MiB)", lambda x: x["ws_rss_after"] / MiB),
        ("  RSS growth (MiB)", lambda x: (x["ws_rss_after"] - x["ws_rss_before"]) / MiB),
        ("  peak RSS (MiB)", lambda x: x["ws_rss_peak"] / MiB),
        (f"upload {args.file_mb} MB /api/contents (MB/s)", lambda x: x["up_mbps"][0]),
        (f"download {args.file_mb} MB /files (MB/s)", lambda x: x["down_mbps"][0]),
        ("  peak RSS during up+down (MiB)", lambda x: x["files_peak"] / MiB),
        ("  RSS growth up+down (MiB)", lambda x: (x["files_rss_after"] - x["files_rss_before"]) / MiB),
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


def table(results: dict, args) -> str:
    names = [n for n in TARGETS if n in results]
    lines = [["", *names, "bridge/direct", "bridge/plain"]]
    for label, fn in rows(args):
        vals = figures(results, fn)
        ratios = ["-", "-"] if "RSS" in label else [  # ratios of memory figures mean little
            ratio(vals.get("bridge"), vals.get("direct")), ratio(vals.get("bridge"), vals.get("plain"))]
        lines.append([label, *(fmt(vals[n]) for n in names), *ratios])
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(lines[0]))]
    text = "\n".join("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))) for row in lines)
    return text + "\n" + "\n".join(notes(results))
