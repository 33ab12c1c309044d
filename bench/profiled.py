"""`python -P -m bench.profiled OUT bridge|plain [args]`: mitmdump under cProfile, for bench/profile.py.

The profiler counts only while it is on: ON (SIGRTMIN) turns it on, OFF (SIGRTMIN+1) turns it off and writes
OUT (through OUT.part, so that a reader never sees half a file). The profile holds the workload, not mitmproxy's
start-up. It counts wall time (cProfile's default clock: a thread CPU clock is a system call per function call, which
inflated every call about 15-fold here); the time waiting in epoll, no work, is left out by
bench/profile_report.py.

  bridge [args]: `python -m addon.commands.launch dump [args]` as `./run.sh` runs it (settings, the hub's whoami,
                 the environment it builds, then mitmdump in the same interpreter).
  plain [args]:  mitmdump [args], as .venv/bin/mitmdump runs it."""

import cProfile
import os
import signal
import sys

ON, OFF = signal.SIGRTMIN, signal.SIGRTMIN + 1  # mitmproxy takes SIGUSR1 and SIGUSR2 for its debug dumps


def profile_until_signalled(out: str) -> None:
    prof = cProfile.Profile()

    def stop(*_) -> None:
        prof.disable()
        prof.dump_stats(out + ".part")
        os.replace(out + ".part", out)

    signal.signal(ON, lambda *_: prof.enable())
    signal.signal(OFF, stop)


def main(argv: list[str]) -> None:
    out, what, args = argv[0], argv[1], argv[2:]
    profile_until_signalled(out)
    if what == "bridge":
        from addon.commands import launch
        sys.exit(launch.main(["dump", *args]))
    else:
        from mitmproxy.tools.main import mitmdump
        sys.argv = ["mitmdump", *args]
        mitmdump()


if __name__ == "__main__":
    main(sys.argv[1:])
