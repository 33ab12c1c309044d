#!/usr/bin/env bash
# The bridge's one entry point: bootstraps its virtualenvs on first use, then runs the subcommand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

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

# lock FILE: wait (at most 10 minutes) for an exclusive lock on FILE, held until `unlock` or until this shell
# exits, so that two first runs do not build the same folder at once. FILE is the folder's requirements file:
# it is there before the folder and is not replaced while it is built.
lock() {
  exec {LOCK_FD}<"$1"
  if command -v flock >/dev/null; then
    flock -w 600 "$LOCK_FD"
  else  # macOS has no flock(1); Python's lock on the same open file stays with this shell when Python exits
    "$(find_python)" -c 'import fcntl, signal, sys; signal.alarm(600); fcntl.flock(int(sys.argv[1]), fcntl.LOCK_EX)' \
      "$LOCK_FD"
  fi || { echo "error: another ./run.sh has been setting up with $1 for 10 minutes." >&2; return 1; }
}

unlock() { exec {LOCK_FD}<&-; }  # before exec: the lock must not live on in the bridge or pytest

# venv_stamp DIR REQUIREMENTS: the requirements' hash and the venv's interpreter (the version it was made with, and
# its resolved path); a venv whose Python changed or disappeared (a pyenv version removed) gets another stamp, so it
# is rebuilt. Read from files, not by running that Python: this runs before every start of the bridge.
venv_stamp() {
  local interpreter="none" version
  version="$(sed -n 's/^version *= *//p' "$1/pyvenv.cfg" 2>/dev/null)"
  [[ -x "$1/bin/python" && -n "$version" ]] && interpreter="$version $(readlink -f "$1/bin/python")"
  echo "$(cat "$2" "$ROOT/requirements.txt" | sha256sum | cut -c1-16) $interpreter"
}

# ensure_venv DIR REQUIREMENTS: (re)build DIR when the requirements or the Python changed.
ensure_venv() {
  local dir="$ROOT/$1" req="$ROOT/$2"
  [[ "$(venv_stamp "$dir" "$req")" == "$(cat "$dir/.stamp" 2>/dev/null)" ]] && return
  lock "$req"
  if [[ "$(venv_stamp "$dir" "$req")" != "$(cat "$dir/.stamp" 2>/dev/null)" ]]; then  # nobody built it meanwhile
    build_venv "$@"
  fi
  unlock
}

build_venv() {
  local dir="$ROOT/$1" req="$ROOT/$2" python
  python="$(find_python)"
  echo "setting up $1 with $python ($2)..." >&2
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --disable-pip-version-check -r "$req" >"$dir/install.log" 2>&1 || {
    tail -n 20 "$dir/install.log" >&2; echo "error: installing $2 failed (log: $1/install.log)." >&2; return 1; }
  venv_stamp "$dir" "$req" >"$dir/.stamp.new"
  mv "$dir/.stamp.new" "$dir/.stamp"
}

# ensure_npm DIR: the node packages of DIR/package-lock.json, (re)installed when the lock file changed.
ensure_npm() {
  local dir="$ROOT/$1" stamp
  stamp="$(sha256sum "$dir/package-lock.json" | cut -c1-16)"
  [[ "$(cat "$dir/node_modules/.stamp" 2>/dev/null)" == "$stamp" ]] && return
  command -v npm >/dev/null || { echo "error: npm not found: install Node.js 20 or newer." >&2; return 1; }
  lock "$dir/package-lock.json"
  if [[ "$(cat "$dir/node_modules/.stamp" 2>/dev/null)" != "$stamp" ]]; then  # nobody installed them meanwhile
    echo "installing the node packages of $1..." >&2
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
    echo "$stamp" >"$dir/node_modules/.stamp.new"
    mv "$dir/node_modules/.stamp.new" "$dir/node_modules/.stamp"
  fi
  unlock
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

# cli ARGS: the entry point the installed `jupyterhub-bridge` runs too (addon/commands/cli.py), in .venv.
cli() {
  ensure_venv .venv requirements.txt
  exec "$ROOT/.venv/bin/python" -P -m addon.commands.cli "$@"
}

# demo ARGS: a local JupyterHub with the bridge in front of it (devhub/demo.py); ARGS go to mitmdump.
demo() {
  ensure_venv .venv requirements.txt
  ensure_venv .venv-hub requirements-hub.txt
  ensure_node
  exec "$ROOT/.venv/bin/python" -P -m devhub.demo "$@"
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
  # The older hubs some real-hub tests also run against (tests/conftest.py `hub_versions`).
  ensure_venv .venv-hub5 requirements-hub5.txt
  ensure_venv .venv-hub4 requirements-hub4.txt
  ensure_node
  ensure_npm tests/clients
  ensure_chromium
  cd "$ROOT"
  # Two workers (pytest-xdist), each taking whole files: most of a hub test waits for hubs, servers and browsers, so
  # two run in about the time of one on two cores. `-n 0` (given after) runs in one process.
  exec "$ROOT/.venv-test/bin/python" -m pytest -n 2 --dist loadfile "$@"
}

case "${1:-}" in
  demo) shift; demo "$@" ;;
  test) shift; run_tests "$@" ;;
  bench) shift; run_bench "$@" ;;
  # help, --version and a word that is no subcommand need no venv: any Python 3.12 answers them (and says
  # which words there are); every other word is a subcommand of addon/commands/cli.py, run in .venv.
  help|-h|--help|--version) exec "$(find_python)" -P -m addon.commands.cli "$@" ;;
  ""|-*|web|check|login|logout|servers|start|stop|open|profile|admin) cli "$@" ;;
  *) exec "$(find_python)" -P -m addon.commands.cli "$@" ;;
esac
