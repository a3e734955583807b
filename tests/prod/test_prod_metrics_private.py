"""/metrics never leaves the VPC: the HTTPS listeners answer it 403 before any target sees it."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from synth_support import resources_of_type, synthesize


def answer(template: dict[str, Any], path: str) -> dict[str, Any]:
    """The first action the HTTPS listener takes for `path`: rules by priority, then default.
    ALB path patterns are case-sensitive globs with * and ?."""
    rules = sorted(
        (
            resource["Properties"]
            for resource in resources_of_type(
                template, "AWS::ElasticLoadBalancingV2::ListenerRule"
            ).values()
        ),
        key=lambda rule: int(rule["Priority"]),
    )
    for rule in rules:
        patterns = [
            value
            for condition in rule["Conditions"]
            if condition["Field"] == "path-pattern"
            for value in condition["PathPatternConfig"]["Values"]
        ]
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns):
            return rule["Actions"][0]
    (https,) = [
        listener["Properties"]
        for listener in resources_of_type(
            template, "AWS::ElasticLoadBalancingV2::Listener"
        ).values()
        if listener["Properties"]["Port"] == 443
    ]
    return https["DefaultActions"][0]


@pytest.mark.parametrize(
    ("stack", "flags"), [("ProdStack", {"phase": "3"}), ("ZeroCostStack", {"phase": "2"})]
)
def test_metrics_are_refused_and_the_api_is_forwarded(stack: str, flags: dict[str, str]) -> None:
    template = synthesize(**flags).template(stack)
    for path in ("/metrics", "/metrics/", "/metrics/anything"):
        action = answer(template, path)
        assert action["Type"] == "fixed-response", path
        assert action["FixedResponseConfig"]["StatusCode"] == "403"
    for path in ("/health", "/api/v1/tracks/1/waveform", "/metricsx"):
        assert answer(template, path)["Type"] == "forward", path
