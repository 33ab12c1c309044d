"""Issue 18 point 4: a hostile hub cannot exhaust the client. A small TLS server on 127.0.0.1 answers like a hub,
except for one crafted answer per test: a 300 MB user model, a 30 MB progress line without a newline, 200 000
nested `[` as /hub/api. `./run.sh servers`, `start` and `check` end promptly with one line naming the hub and a
non-zero exit, no traceback, and a bounded peak RSS."""

from hostile_hub import assert_refused
from hostile_hub import run_sh


def test_servers_refuses_a_huge_user_model(hostile, tmp_path):
    server, hub = hostile
    server.crafted = "huge"
    lines = assert_refused(hub, run_sh(hub, tmp_path, "servers"), "over 16 MiB")
    assert lines[-1].startswith("error: "), lines


def test_start_refuses_an_endless_progress_line(hostile, tmp_path):
    server, hub = hostile
    server.crafted = "long-line"
    lines = assert_refused(hub, run_sh(hub, tmp_path, "start"), "event-stream line over 64 KiB")
    assert lines[-1].startswith("error: "), lines


def test_check_refuses_json_nested_too_deep(hostile, tmp_path):
    server, hub = hostile
    server.crafted = "deep"
    lines = assert_refused(hub, run_sh(hub, tmp_path, "check"), "nested deeper than 64")
    assert any(line.startswith("✗ ") for line in lines), lines
