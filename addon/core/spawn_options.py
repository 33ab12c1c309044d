"""JUPYTER_SERVER_OPTIONS: the user options a server is started with (a profile, a partition, a time limit), and
the body of a start request that carries them, in the form the hub's version takes."""

import json

from addon.core import hub_versions

ENV = "JUPYTER_SERVER_OPTIONS"


def parse(raw: str) -> dict:
    """The options from a JSON object or from `key=value` pairs separated by commas; {} when empty.
    Raises ValueError with one line that says what to fix."""
    text = raw.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            options = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{ENV} is not valid JSON ({e}): write a JSON object such as "
                             '{"profile": "gpu-small"}, or key=value pairs separated by commas.') from None
        if not isinstance(options, dict):
            raise ValueError(f"{ENV} is not one JSON object.")
        return options
    return _pairs(text)


def _pairs(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in text.split(","):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"{ENV}: {item.strip()!r} is not key=value: write pairs such as "
                             "profile=gpu-small,partition=short, or a JSON object.")
        if key.strip() in options:
            raise ValueError(f"{ENV}: {key.strip()!r} is given twice.")
        options[key.strip()] = value.strip()
    return options


def start_body(options: dict, hub_version: str) -> bytes:
    """The body of `POST …/server` that starts a server with these options: JupyterHub 6 takes
    {"user_options": {...}}; JupyterHub 5 and older take the options as the whole body. JupyterHub 6 also still
    reads the older form, so a hub that does not say its version gets that one. No options: no body, and the
    hub reuses the options of the last start."""
    if not options:
        return b""
    major = hub_versions.major(hub_version)
    return json.dumps({"user_options": options} if major is not None and major >= 6 else options).encode()


def shown(options: dict) -> str:
    """Options as one short line for a terminal."""
    return ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in options.items())
