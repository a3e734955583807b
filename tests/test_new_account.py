"""What a brand-new account allows: the stacks must deploy there on the first try."""

from __future__ import annotations

import pytest
from synth_support import FLAG_COMBINATIONS, synthesize

from infra.config import STACK_NAMES


@pytest.mark.parametrize("combination", ["phase2", "phase3-migration"])
def test_no_function_reserves_concurrency(combination: str) -> None:
    """A new account's Lambda concurrency limit can be 10, and Lambda refuses any reservation
    that leaves fewer than 10 unreserved: one reserved unit fails the deploy."""
    synthesis = synthesize(**FLAG_COMBINATIONS[combination])
    assert synthesis.error is None, synthesis.error
    functions = {
        f"{stack}/{logical_id}": resource["Properties"]
        for stack in STACK_NAMES
        for logical_id, resource in synthesis.template(stack)["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert functions
    reserving = [
        name for name, props in functions.items() if "ReservedConcurrentExecutions" in props
    ]
    assert reserving == []
