"""`jupyterhub-bridge [SUBCOMMAND] [arguments]`: the bridge's one entry point. The installed command (pyproject.toml)
calls `main()`; `./run.sh` builds its venvs and then runs `python -m addon.commands.cli`, which is the same `main`.

A subcommand's module is imported only when it runs: `help`, `--version` and a typo need neither mitmproxy nor
a venv (run.sh answers them with any Python 3.12), and a module that is not there yet fails only its own word."""

import importlib
import os
import sys

from addon.core import options
from addon.core import profiles
from addon.core.errors import SettingError
from addon.core.invocation import CHECKOUT
from addon.core.invocation import COMMAND
from addon.core.invocation import RUN_SH

# word: (module in addon.commands whose main(argv) runs it, the word it gets first or None, what the usage says)
SUBCOMMANDS: dict[str, tuple[str, str | None, str]] = {
    "": ("launch", "dump", "run the bridge with mitmdump (extra arguments go to mitmdump, e.g. --set flow_detail=2)"),
    "web": ("launch", "web", "run the bridge with mitmweb on 127.0.0.1:8081, to look at the IDE's traffic"),
    "check": ("check", None, "check settings, hub, TLS, token and server before opening the IDE (the bridge need "
                             "not run)"),
    "login": ("login", "login", "sign in to the hub once (URL, user, password): keeps the settings and a renewed "
                                "token [--help]"),
    "logout": ("login", "logout", "revoke the kept hub token and delete what login kept"),
    "servers": ("servers", "servers", "list your servers (default, named, shared with you): state, URL, activity, "
                                      "options [--json]"),
    "start": ("servers", "start", "start your server, or start SERVER (a named one), with JUPYTER_SERVER_OPTIONS; "
                                  "shows progress"),
    "stop": ("servers", "stop", "stop your server, or stop SERVER (it is kept, not deleted): frees what it holds "
                                "on the cluster"),
    "open": ("open", None, "print (and open in your browser) a single-use URL for JupyterLab through the bridge "
                           "[--no-open]"),
    "profile": ("profile", None, "list your login profiles (profile list), choose the default (profile use NAME), "
                                 "remove one (profile remove NAME); any command takes --profile NAME"),
    "admin": ("admin", None, "for the hub's admin: oauth-config prints the OAuth client login --browser needs, "
                             "register-oauth registers it"),
}
# Only run.sh runs these: they need the repository's devhub, tests and Node.js packages.
CHECKOUT_ONLY = {
    "demo": "start a local JupyterHub (TLS, private CA) with a demo user, and the bridge in front of it",
    "test": "install the test tools and run the test suite (pytest arguments may follow)",
    "bench": "benchmark direct vs plain mitmdump vs the bridge against a local hub (bench/README.md)",
}
HELP_WORDS = ("help", "-h", "--help")
FOOTER = {
    RUN_SH: "PYTHON=... chooses the Python (3.12 or newer) to build .venv with; found by itself when unset.",
    COMMAND: "demo, test and bench need the repository checkout (devhub, Node.js): run them there with ./run.sh.",
}


def usage(prog: str) -> str:
    words = {**{w: text for w, (_, _, text) in SUBCOMMANDS.items()}, **CHECKOUT_ONLY,
             "help": "this text and the settings (also -h, --help; --version: the version)"}
    lines = [f"usage: {prog} [SUBCOMMAND] [arguments]", ""]
    lines += [f"  {word or '(none)':<8} {text}" for word, text in words.items()]
    return "\n".join([*lines, "", FOOTER.get(prog, FOOTER[COMMAND])])


def version() -> str:
    """The checkout's version when this code runs from one (it is what runs), else the installed package's."""
    # Imported here: only --version needs them, and every start of the bridge would pay for them (issue 19).
    import tomllib
    from importlib import metadata

    pyproject = CHECKOUT / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if project.get("name") == COMMAND:
            return project["version"]
    return metadata.version(COMMAND)


def target(argv: list[str]) -> tuple[str, list[str]] | None:
    """The module in addon.commands whose main() runs argv, and the arguments it takes; None for no subcommand."""
    word = "" if not argv or argv[0].startswith("-") else argv[0]  # none: the bridge, with mitmproxy's arguments
    if word not in SUBCOMMANDS:
        return None
    module, first, _ = SUBCOMMANDS[word]
    rest = argv[1:] if word else argv
    return module, [first, *rest] if first else rest


def main(argv: list[str] | None = None, prog: str = COMMAND) -> int:
    argv = sys.argv[1:] if argv is None else argv
    word = argv[0] if argv else ""
    if word in HELP_WORDS:
        try:
            print(f"{usage(prog)}\n\n{options.help_text()}", flush=True)
        except BrokenPipeError:  # `help | head`: the reader has what it wanted
            sys.stdout = None  # nothing left to flush at exit, so no second error
        return 0
    if word == "--version":
        print(f"{COMMAND} {version()}")
        return 0
    try:
        profile, argv = profiles.take_flag(argv)
    except SettingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if profile:  # over JUPYTERHUB_BRIDGE_PROFILE: every module reads the profile from the environment
        os.environ[profiles.ENV] = profile
    word = argv[0] if argv else ""
    if found := target(argv):
        module, args = found
        return importlib.import_module(f"addon.commands.{module}").main(args)
    if word in CHECKOUT_ONLY:
        print(f"error: '{word}' needs the repository checkout (devhub, Node.js): run './run.sh {word}' there.",
              file=sys.stderr)
        return 2
    print(f"error: unknown subcommand '{word}'.\n{usage(prog)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], RUN_SH))
