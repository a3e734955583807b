"""The RedisCopy construct in a small stack: resources, wiring, asset contents, cdk-nag."""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Match, Template
from synth_support import Synthesis, synthesize_stack, without_acknowledgements

from infra.constructs.redis_copy import (
    COPY_BUDGET_SECONDS,
    POLL_SECONDS,
    SLICE_SECONDS,
    TOTAL_TIMEOUT_SECONDS,
    RedisCopy,
    RedisEndpoint,
)

ACCOUNT = "123456789012"
OLD_SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:old-redis-AbCdEf"
NEW_SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:new-redis-GhIjKl"


def build(stack: Stack, **overrides: Any) -> RedisCopy:
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        isolated_subnet_ids=["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
    )
    clients = ec2.SecurityGroup.from_security_group_id(stack, "Clients", "sg-0123456789abcdef0")
    settings: dict[str, Any] = {
        "vpc": vpc,
        "subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        "security_groups": [clients],
        "source": RedisEndpoint(
            host="10.0.1.10",
            port=6379,
            tls=False,
            secret=secretsmanager.Secret.from_secret_complete_arn(stack, "Old", OLD_SECRET),
        ),
        "target": RedisEndpoint(
            host="master.prod.abc123.euw1.cache.amazonaws.com",
            port="6379",
            tls=True,
            secret=secretsmanager.Secret.from_secret_complete_arn(stack, "New", NEW_SECRET),
        ),
        "generation": 3,
    }
    settings.update(overrides)
    return RedisCopy(stack, "RedisCopy", **settings)


def synthesize(*, acknowledge: bool = True) -> Synthesis:
    with contextlib.nullcontext() if acknowledge else without_acknowledgements(RedisCopy):
        return synthesize_stack(
            build, name="CopyStack", env=Environment(account=ACCOUNT, region="eu-west-1")
        )


@functools.cache
def synthesized() -> Synthesis:
    return synthesize()


def template() -> Template:
    return Template.from_json(synthesized().template("CopyStack"))


def test_custom_resource_carries_both_endpoints_policy_and_generation() -> None:
    template().has_resource_properties(
        "Custom::RedisCopy",
        {
            "SourceHost": "10.0.1.10",
            "SourcePort": "6379",
            "SourceTls": "false",
            "SourceSecretArn": OLD_SECRET,
            "TargetHost": "master.prod.abc123.euw1.cache.amazonaws.com",
            "TargetPort": "6379",
            "TargetTls": "true",
            "TargetSecretArn": NEW_SECRET,
            "Policy": "fail",
            "Verify": "full",
            "Generation": "3",
            "ServiceTimeout": "3600",
        },
    )


def test_handlers_run_python_312_in_the_vpc_with_the_budget_in_their_environment() -> None:
    functions = template().find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": Match.string_like_regexp("copy_")}}
    )
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == [
        "copy_handler.is_complete",
        "copy_handler.on_event",
    ]
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.12"
        assert properties["Timeout"] == 240
        assert properties["VpcConfig"]["SubnetIds"] == [
            "subnet-0aaaaaaaaaaaaaaaa",
            "subnet-0bbbbbbbbbbbbbbbb",
        ]
        assert properties["VpcConfig"]["SecurityGroupIds"] == ["sg-0123456789abcdef0"]
        variables = properties["Environment"]["Variables"]
        assert variables["SLICE_SECONDS"] == "90"
        assert int(variables["COPY_BUDGET_SECONDS"]) == COPY_BUDGET_SECONDS
        assert "Ref" in variables["CHECKPOINT_TABLE"]
        assert "LoggingConfig" in properties
    assert COPY_BUDGET_SECONDS + 90 + POLL_SECONDS < TOTAL_TIMEOUT_SECONDS < 3600


def test_provider_waits_at_most_the_hour_and_logs_are_retained() -> None:
    state_machine = template().find_resources("AWS::StepFunctions::StateMachine")
    definition = json.dumps(next(iter(state_machine.values()))["Properties"])
    assert f'\\"IntervalSeconds\\":{POLL_SECONDS}' in definition
    # Each attempt waits POLL_SECONDS, then works one slice: the waiter ends within the budget.
    attempts = TOTAL_TIMEOUT_SECONDS // (POLL_SECONDS + SLICE_SECONDS)
    assert f'\\"MaxAttempts\\":{attempts}' in definition
    for log_group in template().find_resources("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 30


def test_checkpoint_table_is_on_demand_encrypted_with_point_in_time_recovery() -> None:
    template().has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "SSESpecification": {"SSEEnabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
            "DeletionPolicy": "Delete",
        },
    )


def test_handler_role_reads_only_the_two_secrets_and_the_table() -> None:
    policies = template().find_resources("AWS::IAM::Policy")
    handler_policy = next(p for name, p in policies.items() if "HandlerRole" in name)
    statements = handler_policy["Properties"]["PolicyDocument"]["Statement"]
    secret_reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert sorted(s["Resource"] for s in secret_reads) == [NEW_SECRET, OLD_SECRET]
    dynamodb = [s for s in statements if "dynamodb:GetItem" in s["Action"]]
    assert [sorted(s["Action"]) for s in dynamodb] == [
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    ]
    assert "Fn::GetAtt" in json.dumps(dynamodb[0]["Resource"])
    role = next(
        iter(
            template()
            .find_resources(
                "AWS::IAM::Role",
                {"Properties": {"Description": Match.string_like_regexp("Redis copy handlers")}},
            )
            .values()
        )
    )
    assert "AWSLambdaVPCAccessExecutionRole" in json.dumps(role["Properties"]["ManagedPolicyArns"])


def test_asset_holds_the_handlers_and_the_pure_python_redis_package() -> None:
    outdir = synthesized().outdir
    function = next(
        f
        for f in template().find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "copy_handler.on_event"
    )
    bundle = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset = outdir / f"asset.{bundle}"
    names = {path.name for path in asset.iterdir()}
    assert {"copy_engine.py", "copy_handler.py", "copy_checkpoint.py", "redis"} <= names
    assert (asset / "redis" / "client.py").is_file()
    assert not list(asset.rglob("*.so"))
    assert not list(asset.rglob("__pycache__"))


def test_cdk_nag_passes_and_each_acknowledgement_silences_a_real_finding() -> None:
    # Given the construct as shipped, Then cdk-nag reports nothing
    shipped = synthesized()
    assert shipped.error is None
    assert shipped.report["pluginReports"] == []
    # And without its acknowledgements cdk-nag flags exactly the accepted findings
    bare = synthesize(acknowledge=False)
    assert bare.error is not None and bare.error.startswith("ValidationFailed")
    flagged = {
        violation["ruleName"].split("[")[0] + ("[*]" if "[" in violation["ruleName"] else "")
        for plugin in bare.report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
        for violation in plugin["violations"]
    }
    assert flagged == {
        "AwsSolutions-IAM4[*]",
        "AwsSolutions-IAM5[*]",
        "AwsSolutions-L1",
        "AwsSolutions-SF2",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"policy": "merge"}, "policy='merge' is not one of fail, skip, replace"),
        ({"verify": "some"}, "verify='some' is not one of full, sample, none"),
        ({"generation": -1}, "generation=-1 must be a whole number >= 0"),
        ({"generation": True}, "generation=True must be a whole number"),
    ],
)
def test_construct_refuses_bad_settings(overrides: dict[str, Any], message: str) -> None:
    stack = Stack(App(), "Bad", env=Environment(account=ACCOUNT, region="eu-west-1"))
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build(stack, **overrides)
