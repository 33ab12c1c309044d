"""jupyter_server configuration of the single-user servers of ``devhub --record-auth``.

devhub copies it into <workdir>/auth-records/ as jupyter_server_config.py and points the servers'
JUPYTER_CONFIG_PATH there. Every request's ``Authorization`` header is appended, as a JSON line
(method, path, authorization), to the file $DEVHUB_AUTH_RECORD (0600) when tornado starts handling the request,
so before any answer: what a server's own code sees of a token before the hub decides anything (field note 43),
readable by a test as soon as its request returned.
"""

import json
import os

from tornado.web import OutputTransform


class RecordAuthorization(OutputTransform):
    """Tornado makes each transform with the request before it runs the handler: one line per request."""

    def __init__(self, request):
        line = json.dumps({"method": request.method, "path": request.path,
                           "authorization": request.headers.get("Authorization")})
        fd = os.open(os.environ["DEVHUB_AUTH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(line + "\n")


c = get_config()  # noqa: F821
# tornado.web.Application(transforms=...): jupyter_server passes its tornado_settings to it as keywords. Its
# default list is empty (no gzip: jupyter_server does not set compress_response), so this adds one, removes none.
c.ServerApp.tornado_settings = {"transforms": [RecordAuthorization]}
