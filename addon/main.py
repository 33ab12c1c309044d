"""Entry script for `mitmdump -s`: the project root must be on PYTHONPATH (run.sh sets it)."""

from addon.bridge import Bridge

addons = [Bridge()]
