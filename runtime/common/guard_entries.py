"""The teardown guard's comparison of two deploys, defined once: infra/stateful.py records each
stack's stateful resources as `LogicalId=digest` entries at synth, and the guard's Lambda
compares the last deploy's entries with this one's."""

from __future__ import annotations


def changes(before: list[str], after: list[str]) -> dict[str, str]:
    """Each entry of `before` that `after` deletes or replaces: {logical ID: "deleted" or
    "replaced"}."""
    kept = dict(entry.split("=", 1) for entry in after)
    found = {}
    for entry in before:
        logical_id, digest = entry.split("=", 1)
        if logical_id not in kept:
            found[logical_id] = "deleted"
        elif kept[logical_id] != digest:
            found[logical_id] = "replaced"
    return found
