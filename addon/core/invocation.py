"""How the user runs the bridge, for the messages that say what to run: `./run.sh` in a checkout (run.sh beside
the package), the installed `jupyterhub-bridge` command elsewhere."""

from pathlib import Path

COMMAND = "jupyterhub-bridge"  # the installed command (pyproject.toml's [project.scripts])
RUN_SH = "./run.sh"
CHECKOUT = Path(__file__).resolve().parents[2]  # the repository, when the package runs from one
RUN = RUN_SH if (CHECKOUT / "run.sh").is_file() else COMMAND
