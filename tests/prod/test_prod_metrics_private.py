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


def test_the_metrics_port_is_in_no_target_group_or_security_group() -> None:
    """The tasks serve metrics on the metrics port only (gunicorn's master, METRICS_BIND's
    default, the task's loopback); the ALB forwards to the service's port, and no security
    group admits the metrics port."""
    from prostudio.settings import load_settings  # noqa: PLC0415

    from infra.constructs.fargate_service import CONTAINER_PORT  # noqa: PLC0415

    defaults = load_settings({})
    template = synthesize(phase="3").template("ProdStack")
    target_ports = {
        group["Properties"]["Port"]
        for group in resources_of_type(
            template, "AWS::ElasticLoadBalancingV2::TargetGroup"
        ).values()
    }
    ingress_ports = {
        (rule.get("FromPort"), rule.get("ToPort"))
        for resource in resources_of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        for rule in [resource["Properties"]]
    }
    containers = [
        container
        for task in resources_of_type(template, "AWS::ECS::TaskDefinition").values()
        for container in task["Properties"]["ContainerDefinitions"]
    ]

    assert defaults.metrics_host == "127.0.0.1"
    assert target_ports == {CONTAINER_PORT} != {defaults.metrics_port}
    assert all(not low <= defaults.metrics_port <= high for low, high in ingress_ports if low)
    assert all(
        variable["Name"] != "METRICS_BIND"
        for container in containers
        for variable in container.get("Environment", [])
    )
