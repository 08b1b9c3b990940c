"""Chaos tests: `xmas` as real subprocesses against emulators that fail at random or on cue (harness.py)."""
