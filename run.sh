#!/usr/bin/env bash
# The bridge's one entry point: bootstraps its virtualenvs on first use, then runs the subcommand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

usage() {
  cat <<'EOF'
usage: ./run.sh [SUBCOMMAND] [mitmproxy arguments]

  (none)   run the bridge with mitmdump (extra arguments go to mitmdump, e.g. --set flow_detail=2)
  web      run the bridge with mitmweb on 127.0.0.1:8081, to look at the IDE's traffic
  demo     start a local JupyterHub (TLS, private CA) with a demo user, and the bridge in front of it
  check    check settings, hub, TLS, token and server before opening the IDE (the bridge need not run)
  test     install the test tools and run the test suite (pytest arguments may follow)
  bench    benchmark direct vs plain mitmdump vs the bridge against a local hub (bench/README.md)
  help     this text

Settings (environment variable, or --set <option>=<value>):
  JUPYTER_PROXY_IP_OR_NAME   jupyter_proxy_ip_or_name   where the bridge listens      [localhost]
  JUPYTER_PROXY_PORT         jupyter_proxy_port         its port                      [8000]
  JUPYTER_SERVER_IP_OR_NAME  jupyter_server_ip_or_name  the hub's address (required)
  JUPYTER_SERVER_PORT        jupyter_server_port        the hub's HTTPS port          [8000]
  JUPYTER_SERVER_NAME        jupyter_server_name        TLS name [jupyterhub for an IP, else the address]
  JUPYTER_USERNAME           jupyter_username           the hub user [the hub token's owner; required without one]
  JUPYTER_CLUSTER_CA_CERT    jupyter_cluster_ca_cert    CA file (PEM)                 [./my_sslca.cert]
  JUPYTER_NAMED_SERVER       jupyter_named_server       a named server                [default server]
  JUPYTERHUB_BASE_URL        jupyterhub_base_url        the hub's base URL            [/]
  JUPYTERHUB_API_TOKEN       jupyterhub_api_token       the hub token the bridge sends [unset: clients bring theirs]
  JUPYTERHUB_API_TOKEN_FILE  jupyterhub_api_token_file  a file (mode 600) holding the hub token
  JUPYTER_PROXY_TOKEN        jupyter_proxy_token        the bridge's own token for clients [random per run]
  JUPYTER_PROXY_STREAM_BODIES  bodies above this size are streamed, not held in memory [1m]
  JUPYTER_PROXY_WEB_FLOWS    jupyter_proxy_web_flows    web: finished flows kept      [500]
  JUPYTER_PROXY_WEB_WS_MESSAGES  jupyter_proxy_web_ws_messages  web: messages kept per WebSocket [100]
  JUPYTER_AUTOSTART          jupyter_autostart          start a stopped server (needs the hub token) [true]
  JUPYTER_START_TIMEOUT      jupyter_start_timeout      seconds to wait for a start, then 503 [300]
  PYTHON                     the Python (>= 3.12) to build .venv with            [found by itself]
EOF
}

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
  if [[ -n "${PYTHON:-}" ]]; then
    python_ok "$PYTHON" && { echo "$PYTHON"; return; }
    echo "error: PYTHON=$PYTHON is not a Python 3.12 or newer." >&2; return 1
  fi
  local candidate
  for candidate in python3.13 python3.12 python3; do
    command -v "$candidate" >/dev/null && python_ok "$candidate" && { command -v "$candidate"; return; }
  done
  if command -v pyenv >/dev/null; then
    for candidate in $(ls -d "$(pyenv root)"/versions/3.* 2>/dev/null | sort -rV); do
      python_ok "$candidate/bin/python" && { echo "$candidate/bin/python"; return; }
    done
  fi
  echo "error: no Python 3.12 or newer found (mitmproxy 12 needs it). Install one, e.g." \
       "'apt-get install python3.12' or 'pyenv install 3.12', or point PYTHON= at it." >&2
  return 1
}

# ensure_venv DIR REQUIREMENTS: (re)build DIR when the requirements or the Python changed.
ensure_venv() {
  local dir="$ROOT/$1" req="$ROOT/$2" stamp
  stamp="$(cat "$req" "$ROOT/requirements.txt" | sha256sum | cut -c1-16)"
  [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]] && return
  local python; python="$(find_python)"
  echo "setting up $1 with $python ($2)..." >&2
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --disable-pip-version-check -r "$req" >"$dir/install.log" 2>&1 || {
    tail -n 20 "$dir/install.log" >&2; echo "error: installing $2 failed (log: $1/install.log)." >&2; return 1; }
  echo "$stamp" > "$dir/.stamp"
}

# ensure_npm DIR: the node packages of DIR/package-lock.json, (re)installed when the lock file changed.
ensure_npm() {
  local dir="$ROOT/$1" stamp
  stamp="$(sha256sum "$dir/package-lock.json" | cut -c1-16)"
  [[ -f "$dir/node_modules/.stamp" && "$(cat "$dir/node_modules/.stamp")" == "$stamp" ]] && return
  command -v npm >/dev/null || { echo "error: npm not found: install Node.js 20 or newer." >&2; return 1; }
  echo "installing the node packages of $1..." >&2
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  echo "$stamp" > "$dir/node_modules/.stamp"
}

ensure_node() { ensure_npm devhub; }

# The browser tests drive Debian's chromium; install it where we may (CI runs as root), else they skip.
ensure_chromium() {
  [[ -x /usr/bin/chromium ]] && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing chromium (Debian package) for the browser tests..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
      echo "warning: could not install chromium: the browser tests will be skipped." >&2
  else
    echo "note: /usr/bin/chromium is missing: the browser tests will be skipped (apt-get install chromium)." >&2
  fi
}

bridge() {
  ensure_venv .venv requirements.txt
  exec "$ROOT/.venv/bin/python" -m addon.launch "$@"
}

# demo_settings READY_FILE: the bridge's settings for the local hub, as shell assignments.
demo_settings() {
  "$ROOT/.venv/bin/python" - "$1" <<'PY'
import json, shlex, sys
hub = json.load(open(sys.argv[1]))
user, account = next(iter(hub["users"].items()))
for name, value in {
    "JUPYTER_SERVER_IP_OR_NAME": hub["host"], "JUPYTER_SERVER_PORT": hub["port"],
    "JUPYTER_SERVER_NAME": hub["tls_name"], "JUPYTER_CLUSTER_CA_CERT": hub["ca_file"],
    "JUPYTER_USERNAME": user, "JUPYTERHUB_BASE_URL": hub["base_url"], "JUPYTERHUB_API_TOKEN": account["token"],
}.items():
    print(f"export {name}={shlex.quote(str(value))}")
print(f"DEMO_HUB_URL={shlex.quote(hub['hub_url'])}")
PY
}

demo() {
  ensure_venv .venv requirements.txt
  ensure_venv .venv-hub requirements-hub.txt
  ensure_node
  local work="$ROOT/.demo" ready
  ready="$work/ready.json"
  rm -f "$ready"; mkdir -p "$work"
  echo "starting a local JupyterHub (log: $work/devhub.log)..."
  (cd "$ROOT" && exec "$ROOT/.venv-hub/bin/python" -m devhub --workdir "$work" --ready-file "$ready") \
    >"$work/devhub.log" 2>&1 &
  DEMO_PID=$!
  trap 'kill -TERM $DEMO_PID 2>/dev/null; wait $DEMO_PID 2>/dev/null; echo "demo stopped."' EXIT
  trap 'exit 130' INT TERM
  for _ in $(seq 240); do
    [[ -f "$ready" ]] && break
    kill -0 "$DEMO_PID" 2>/dev/null || { tail -n 20 "$work/devhub.log" >&2; echo "error: the hub did not start." >&2; exit 1; }
    sleep 0.5
  done
  [[ -f "$ready" ]] || { echo "error: the hub took more than 2 minutes to start." >&2; exit 1; }
  eval "$(demo_settings "$ready")"
  echo "demo hub: $DEMO_HUB_URL (user $JUPYTER_USERNAME); Ctrl-C stops the hub and the bridge."
  "$ROOT/.venv/bin/python" -m addon.launch dump "$@"
}

run_bench() {
  ensure_venv .venv requirements.txt
  ensure_venv .venv-test requirements-test.txt
  ensure_venv .venv-hub requirements-hub.txt
  ensure_node
  cd "$ROOT"
  exec "$ROOT/.venv-test/bin/python" -m bench.run "$@"
}

run_tests() {
  ensure_venv .venv requirements.txt
  ensure_venv .venv-test requirements-test.txt
  ensure_venv .venv-hub requirements-hub.txt
  ensure_node
  ensure_npm tests/clients
  ensure_chromium
  cd "$ROOT"
  exec "$ROOT/.venv-test/bin/python" -m pytest "$@"
}

case "${1:-}" in
  -h|--help|help) usage ;;
  web) shift; bridge web "$@" ;;
  demo) shift; demo "$@" ;;
  check) shift; ensure_venv .venv requirements.txt; exec "$ROOT/.venv/bin/python" -m addon.check "$@" ;;
  test) shift; run_tests "$@" ;;
  bench) shift; run_bench "$@" ;;
  *) bridge dump "$@" ;;
esac
