import json

import pytest

from addon.core import spawn_options


@pytest.mark.parametrize("raw, options", [
    ("", {}),
    ("   ", {}),
    ('{"profile": "gpu-small", "partition": "short"}', {"profile": "gpu-small", "partition": "short"}),
    ('  {"cpus": 4, "gpu": true, "image": {"tag": "v1"}}', {"cpus": 4, "gpu": True, "image": {"tag": "v1"}}),
    ("profile=gpu-small", {"profile": "gpu-small"}),
    ("profile=gpu-small, partition = short", {"profile": "gpu-small", "partition": "short"}),
    ("time=01:00:00,empty=", {"time": "01:00:00", "empty": ""}),
    ("query=a=b", {"query": "a=b"}),  # the first '=' splits
])
def test_json_object_or_pairs(raw, options):
    assert spawn_options.parse(raw) == options


@pytest.mark.parametrize("raw, words", [
    ('{"profile": "gpu-small"', "is not valid JSON (Expecting ',' delimiter: line 1 column 24"),
    ("{profile: gpu}", "is not valid JSON"),
    ('{"a": 1} x', "is not valid JSON (Extra data"),
    ("profile", "'profile' is not key=value"),
    ("profile=gpu,,partition=short", "'' is not key=value"),
    ("=gpu", "'=gpu' is not key=value"),
    ("a=1,a=2", "'a' is given twice"),
    ('["profile"]', "'[\"profile\"]' is not key=value"),  # not an object: read as a pair, and refused
])
def test_bad_options_are_one_line_that_names_the_setting(raw, words):
    with pytest.raises(ValueError) as e:
        spawn_options.parse(raw)
    assert str(e.value).startswith("JUPYTER_SERVER_OPTIONS") and words in str(e.value), e.value
    assert "\n" not in str(e.value)


OPTIONS = {"profile": "gpu-small", "partition": "short"}


@pytest.mark.parametrize("version, body", [
    ("6.1.1", {"user_options": OPTIONS}),  # JupyterHub 6: the options under user_options
    ("6.0.0", {"user_options": OPTIONS}),
    ("7.0.0", {"user_options": OPTIONS}),
    ("5.3.0", OPTIONS),  # JupyterHub 5 and older: the options are the body
    ("4.1.6", OPTIONS),
    ("1.5.0", OPTIONS),
    ("", OPTIONS),  # no version said: the older form, which JupyterHub 6 still reads
    ("dev", OPTIONS),
])
def test_start_body_follows_the_hubs_version(version, body):
    assert json.loads(spawn_options.start_body(OPTIONS, version)) == body


@pytest.mark.parametrize("version", ["6.1.1", "5.3.0", ""])
def test_no_options_no_body(version):
    assert spawn_options.start_body({}, version) == b""


def test_shown():
    assert spawn_options.shown({"profile": "gpu", "cpus": 4, "x": {"a": 1}}) == 'profile=gpu,cpus=4,x={"a": 1}'
