"""Issue 18 point 4: a hostile hub cannot exhaust the client. A small TLS server on 127.0.0.1 answers like a hub,
except for one crafted answer per test: a 300 MB user model, a 30 MB progress line without a newline, 200 000
nested `[` as /hub/api. `./run.sh servers`, `start` and `check` end promptly with one line naming the hub and a
non-zero exit, no traceback, and a bounded peak RSS."""

import pytest
from hostile_hub import MAX_RSS_KB
from hostile_hub import PROMPT
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


@pytest.mark.parametrize("command", ["check", "servers"])
def test_utf16_json_nested_deep_is_no_json(hostile, tmp_path, command):
    """Issue 28: UTF-16 JSON passed the depth check (which reads bytes) and json.loads raised RecursionError; the
    Hub client now takes UTF-8 only, as RFC 8259 says."""
    server, hub = hostile
    server.crafted = "deep-utf16"
    status, output, took, rss = run_sh(hub, tmp_path, command)
    assert "Traceback" not in output and "RecursionError" not in output, output[-3000:]
    assert status == 1 and took < PROMPT and rss < MAX_RSS_KB, (status, took, rss, output[-3000:])


def test_start_prints_a_flood_of_progress_events_a_few_lines_a_second(hostile, tmp_path):
    """Issue 28: a flood of small valid progress events printed a line each (916,604 in one start)."""
    server, hub = hostile
    server.crafted = "progress-flood"
    status, output, took, _ = run_sh(hub, tmp_path, "start")
    progress = [line for line in output.splitlines() if "Starting your server" in line]
    assert status == 0 and progress[-1].endswith("100% ready"), output[-3000:]
    assert len(progress) <= 4 * took + 2, (len(progress), took)  # at most 4 a second (PROGRESS_INTERVAL), and the last


def test_servers_warns_of_sharing_on_a_hub_older_than_5_5_1(hostile, tmp_path):
    """Issue 29: the hub says 5.4.0 and lists a server bob shared: `servers` lists it with one line of warning."""
    server, hub = hostile
    server.crafted = "sharing-bug"
    status, output, _, _ = run_sh(hub, tmp_path, "servers")
    assert status == 0 and "(default) (shared by bob)" in output, output
    assert [line for line in output.splitlines() if "5.5.1" in line] == [
        "note: JupyterHub 5.4.0 has a high-severity sharing bug fixed in 5.5.1: ask the hub's admin to upgrade "
        "before relying on shared servers"], output
