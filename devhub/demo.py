"""``./run.sh demo [mitmdump arguments]``: a local JupyterHub (devhub) with the bridge in front of it.

Run by run.sh with .venv's python (the bridge's venv; standard library only here): starts devhub in .demo/,
gives the bridge the hub's settings in its environment and runs it (``python -m addon.commands.launch dump``);
Ctrl-C (or SIGTERM) stops the bridge, then the hub and its servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from devhub.launcher import ROOT, DevHubFailed, DevHubProcess
from devhub.stop import stop_processes

WORKDIR = ROOT / ".demo"
BRIDGE_STOP_TIMEOUT = 10.0


def bridge_environment(hub: dict, environ: dict[str, str]) -> dict[str, str]:
    """The bridge's settings for the hub of this ready dict (its first user), over the caller's environment."""
    user, account = next(iter(hub["users"].items()))
    return environ | {
        "JUPYTER_SERVER_IP_OR_NAME": hub["host"], "JUPYTER_SERVER_PORT": str(hub["port"]),
        "JUPYTER_SERVER_NAME": hub["tls_name"], "JUPYTER_CLUSTER_CA_CERT": hub["ca_file"],
        "JUPYTER_USERNAME": user, "JUPYTERHUB_BASE_URL": hub["base_url"], "JUPYTERHUB_API_TOKEN": account["token"],
    }


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # the same way out as Ctrl-C


def run_bridge(hub: dict, args: list[str]) -> int:
    """The bridge in the foreground; on Ctrl-C (which reaches it too) or SIGTERM, stopped and waited for."""
    bridge = subprocess.Popen([sys.executable, "-P", "-m", "addon.commands.launch", "dump", *args],
                              cwd=ROOT, env=bridge_environment(hub, dict(os.environ)))
    try:
        return bridge.wait()
    except KeyboardInterrupt:
        stop_processes([bridge], BRIDGE_STOP_TIMEOUT, sig=signal.SIGINT)
        return 130


def main(args: list[str]) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    log = WORKDIR / "devhub.log"
    print(f"starting a local JupyterHub (log: {log})...", flush=True)
    hub = None
    try:
        hub = DevHubProcess.launch(WORKDIR, output=log)
        info = hub.wait_ready()
        user = next(iter(info["users"]))
        print(f"demo hub: {info['hub_url']} (user {user}); Ctrl-C stops the hub and the bridge.", flush=True)
        return run_bridge(info, args)
    except DevHubFailed as e:
        print(f"error: the hub did not start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if hub is not None:
            hub.stop()
        print("demo stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
