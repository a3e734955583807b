"""The Redis copy's choices, defined once for the flags, the construct and the engine."""

from __future__ import annotations

# What to do with a key the target already holds: refuse to start, keep it, or overwrite it.
COPY_POLICIES = ("fail", "skip", "replace")
# How the copy is checked afterwards: every key, a sample, or not at all.
VERIFY_MODES = ("full", "sample", "none")
