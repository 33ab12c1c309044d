"""The bridge's options as mitmproxy options, resolved into one frozen Settings and the one Hub client that
the other addons read from here."""

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Optional

from mitmproxy import ctx
from mitmproxy import exceptions

from addon.core import login_record
from addon.core.invocation import RUN
from addon import store
from addon.hub.api import Hub
from addon.core import settings
from addon.core.settings import Settings

logger = logging.getLogger(__name__)


class Config:
    settings: Settings | None = None
    hub: Hub | None = None
    stored_token: login_record.HubToken | None = None  # the record of the hub token in use, when ./run.sh login made it
    logged_out = False  # the login the bridge served with was removed (./run.sh logout): Renew says so, no more tokens
    access_problem = ""  # why the hub made no access token, as Access last logged it (printable); "" once it did

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.environ = environ  # option defaults and secrets left unset come from here (tests: their own)

    def load(self, loader) -> None:
        for o in settings.OPTIONS:
            if o.secret:
                loader.add_option(o.name, Optional[str], None, f"{o.help} Default: ${o.env}.")
            else:
                loader.add_option(o.name, str, o.env_default(self.environ), o.help)

    def configure(self, updated: set[str]) -> None:
        if ctx.options.ssl_insecure:  # from -k, --set or a config.yaml: the bridge would send a token unverified
            raise exceptions.OptionsError("ssl_insecure is on: the bridge sends your tokens to the hub and never "
                                          "without verifying it. Remove ssl_insecure (or -k); for a private CA set "
                                          "JUPYTER_CLUSTER_CA_CERT.")
        if not updated & settings.OPTION_NAMES:
            return
        try:
            stored = store.load(self.environ)
            s = settings.resolve({name: getattr(ctx.options, name) for name in settings.OPTION_NAMES}, self.environ,
                                 stored)
        except ValueError as e:
            raise exceptions.OptionsError(str(e)) from e
        if not s.username:
            raise exceptions.OptionsError(f"JUPYTER_USERNAME is not set: start the bridge with {RUN}, which "
                                          "asks the hub whose token JUPYTERHUB_API_TOKEN is, or set it.")
        if (old := self.settings) and (old.hub_token, old.prefix, old.dial_url) == (s.hub_token, s.prefix, s.dial_url):
            s = replace(s, server_token=old.server_token)  # another option changed: the access token still fits
        self.use(s, stored.holds(s.hub_token))

    def use(self, s: Settings, stored_token: login_record.HubToken | None = None) -> None:
        """Serve with these settings from the next request on (a renewed token, say, and its stored record)."""
        self.settings, self.hub, self.stored_token = s, Hub(s), stored_token

    def running(self) -> None:
        s = self.settings
        if s and s.hub_token and not s.local_secret:
            logger.warning("JUPYTER_PROXY_TOKEN is empty: any program of any user on this machine can use "
                           "your JupyterHub server through the bridge.")
        if s and not settings.is_loopback(s.listen_host):
            logger.warning(f"Listening on {s.listen_host!r}, not loopback: others on the network can reach "
                           "the bridge; it still asks them for its token.")
