"""Fine-grained assertions on ZeroCostStack, one property of the issue at a time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template
from synth_support import (
    REAL_ZONE,
    SECOND_REGION,
    cfn_lint_errors,
    construct_template,
    context_for,
    resources_of_type,
    synthesize,
)
from test_environments import WIDEST

from infra.config import ZERO_COST_STACK, ConfigError, load_settings
from infra.constructs.network import Network
from infra.parameters import PRODUCTION_NAMES
from infra.stacks.zero_cost_stack import zero_cost_cache


def zero_cost(**flags: Any) -> Template:
    return Template.from_json(synthesize(**flags).template("ZeroCostStack"))


def ingress_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    inline = [
        {**rule, "GroupLogicalId": logical_id}
        for logical_id, group in resources_of_type(template, "AWS::EC2::SecurityGroup").items()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ]
    separate = [
        resource["Properties"]
        for resource in resources_of_type(template, "AWS::EC2::SecurityGroupIngress").values()
    ]
    return inline + separate


class TestNetwork:
    def test_vpc_has_no_nat_gateway_and_three_subnet_groups_in_two_azs(self) -> None:
        template = zero_cost(phase=1)
        template.resource_count_is("AWS::EC2::VPC", 1)
        template.resource_count_is("AWS::EC2::NatGateway", 0)
        template.resource_count_is("AWS::EC2::Subnet", 6)
        for group in ("public", "app", "data"):
            template.resource_properties_count_is(
                "AWS::EC2::Subnet",
                {"Tags": Match.array_with([{"Key": "aws-cdk:subnet-name", "Value": group}])},
                2,
            )

    @pytest.mark.parametrize("flags", [{"phase": 1}, {"phase": 2}, {"phase": 3}])
    def test_subnets_are_identical_in_every_phase(self, flags: dict[str, int]) -> None:
        baseline = resources_of_type(
            synthesize(phase=1).template("ZeroCostStack"), "AWS::EC2::Subnet"
        )
        subnets = resources_of_type(
            synthesize(**flags).template("ZeroCostStack"), "AWS::EC2::Subnet"
        )
        assert subnets == baseline

    def test_network_ids_are_published_to_ssm(self) -> None:
        template = zero_cost(phase=1)
        for name in (
            PRODUCTION_NAMES.vpc_id,
            PRODUCTION_NAMES.app_subnet_ids,
            PRODUCTION_NAMES.data_subnet_ids,
            PRODUCTION_NAMES.public_subnet_ids,
            PRODUCTION_NAMES.app_route_table_ids,
        ):
            template.has_resource_properties("AWS::SSM::Parameter", {"Name": name})

    def test_no_cloudformation_exports(self) -> None:
        for synthesis in (synthesize(phase=1), synthesize(phase=2)):
            for template in synthesis.templates.values():
                for output in template.get("Outputs", {}).values():
                    assert "Export" not in output


class TestBox:
    def test_one_t3_micro_with_imdsv2_encrypted_root_and_no_key_pair(self) -> None:
        template = zero_cost(phase=1)
        template.resource_count_is("AWS::EC2::Instance", 1)
        template.has_resource_properties(
            "AWS::EC2::Instance",
            {
                # Free on the legacy tier (where t2 is absent) and on the 2025 Free Plan.
                "InstanceType": "t3.micro",
                "ImageId": "resolve:ssm:/aws/service/ami-amazon-linux-latest/"
                "al2023-ami-kernel-default-x86_64",
                "BlockDeviceMappings": [
                    {"DeviceName": "/dev/xvda", "Ebs": Match.object_like({"Encrypted": True})}
                ],
                "KeyName": Match.absent(),
            },
        )
        template.has_resource_properties(
            "AWS::EC2::LaunchTemplate",
            {"LaunchTemplateData": {"MetadataOptions": {"HttpTokens": "required"}}},
        )

    def test_session_manager_instead_of_ssh(self) -> None:
        template = zero_cost(phase=1)
        # Session Manager's needs come from the box's own agent policy (box_role.py).
        granted = {
            action
            for policy in template.find_resources("AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for action in (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
        }
        assert {
            "ssm:UpdateInstanceInformation",
            "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
        } <= granted
        ports = {
            rule.get("FromPort")
            for rule in ingress_rules(synthesize(phase=1).template("ZeroCostStack"))
        }
        assert 22 not in ports

    def test_box_is_open_only_on_80_plus_redis_for_migration(self) -> None:
        """nginx on the box listens on 80 only: 443 stays closed."""
        rules = ingress_rules(synthesize(phase=1).template("ZeroCostStack"))
        public = [rule for rule in rules if rule.get("CidrIp") == "0.0.0.0/0"]
        assert [(rule["FromPort"], rule["ToPort"]) for rule in public] == [(80, 80)]
        redis = [rule for rule in rules if rule.get("FromPort") == 6379]
        assert len(redis) == 1
        assert "CidrIp" not in redis[0]
        assert redis[0]["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith(
            "HandoffMigrationClients"
        )

    def test_elastic_ip_is_associated_with_box_one(self) -> None:
        template = zero_cost(phase=1)
        template.resource_count_is("AWS::EC2::EIP", 1)
        template.has_resource_properties(
            "AWS::EC2::EIPAssociation", {"InstanceId": {"Ref": "WebBoxB619B63F"}}
        )

    def test_stack_waits_for_the_health_gated_signal(self) -> None:
        template = synthesize(phase=1).template("ZeroCostStack")
        box = template["Resources"]["WebBoxB619B63F"]
        assert box["CreationPolicy"]["ResourceSignal"]["Count"] == 1
        user_data = json.dumps(box["Properties"]["UserData"])
        assert "cfn-init" in user_data
        assert "cfn-signal" in user_data
        init = box["Metadata"]["AWS::CloudFormation::Init"]
        assert init["configSets"]["default"] == ["app", "health"]
        health = init["health"]["commands"]["20-wait-for-health"]["command"]
        assert "http://127.0.0.1/health" in health
        assert health.rstrip().endswith("exit 1")

    def test_box_installs_the_service_asset_and_runs_its_provisioning(self) -> None:
        init = synthesize(phase=1).template("ZeroCostStack")["Resources"]["WebBoxB619B63F"][
            "Metadata"
        ]["AWS::CloudFormation::Init"]
        assert "/opt/prostudio/app" in init["app"]["sources"]
        command = init["app"]["commands"]["10-provision"]
        assert command["command"] == "bash /opt/prostudio/app/deploy/provision.sh"
        assert command["env"]["PROSTUDIO_REDIS_MODE"] == "local"
        assert command["env"]["API_WORKERS"] == "1"

    def test_user_data_has_no_fingerprint_so_updates_never_restart_the_box(self) -> None:
        before = synthesize(phase=1).template("ZeroCostStack")["Resources"]["WebBoxB619B63F"]
        after = synthesize(phase=2).template("ZeroCostStack")["Resources"]["WebBoxB619B63F"]
        assert before["Properties"]["UserData"] == after["Properties"]["UserData"]

    def test_redis_password_comes_from_secrets_manager_never_plain_text(self) -> None:
        template = synthesize(phase=1).template("ZeroCostStack")
        secrets = resources_of_type(template, "AWS::SecretsManager::Secret")
        password = secrets["WebRedisPassword8A7B3EF6"]["Properties"]
        assert "GenerateSecretString" in password
        assert all("SecretString" not in secret["Properties"] for secret in secrets.values())
        env = template["Resources"]["WebBoxB619B63F"]["Metadata"]["AWS::CloudFormation::Init"][
            "app"
        ]["commands"]["10-provision"]["env"]
        assert env["PROSTUDIO_REDIS_SECRET_ARN"] == {"Ref": "WebRedisPassword8A7B3EF6"}
        user_data = json.dumps(template["Resources"]["WebBoxB619B63F"]["Properties"]["UserData"])
        assert "PASSWORD" not in user_data.upper()


class TestBoxType:
    # Each type's AMI and credits: tests/zero_cost/test_box_types.py.
    def test_a_type_the_box_cannot_run_is_refused_in_one_line(self) -> None:
        with pytest.raises(ConfigError, match=r"^instance_type='m5.large' is not allowed; use"):
            load_settings(context_for({"instance_type": "m5.large"}))

    def test_the_second_box_is_in_the_second_az(self) -> None:
        boxes = resources_of_type(
            synthesize(phase=2).template("ZeroCostStack"), "AWS::EC2::Instance"
        )
        placement = {
            logical_id: (
                box["Properties"]["AvailabilityZone"]["Fn::Select"][0],
                box["Properties"]["NetworkInterfaces"][0]["SubnetId"]["Ref"],
            )
            for logical_id, box in boxes.items()
        }
        assert placement == {
            "WebBoxB619B63F": (0, "NetworkVpcpublicSubnet1Subnet00617657"),
            "WebBox293410087": (1, "NetworkVpcpublicSubnet2SubnetDCAA7C9A"),
        }


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id.removeprefix("BoxAlarms")[:-8]: alarm["Properties"]
        for logical_id, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        if logical_id.startswith("BoxAlarms")
    }


class TestBoxAlarms:
    @pytest.mark.parametrize(
        ("phase", "boxes"), [(1, ["Box"]), (2, ["Box", "Box2"]), (3, ["Box", "Box2"])]
    )
    def test_every_box_has_credit_status_and_health_alarms(
        self, phase: int, boxes: list[str]
    ) -> None:
        alarms = _alarms(synthesize(phase=phase).template("ZeroCostStack"))
        expected = {
            f"{box}{kind}"
            for box in boxes
            for kind in ("CpuCredits", "SystemStatus", "InstanceStatus", "Health")
        }
        assert set(alarms) == expected

    def test_alarms_watch_their_own_box(self) -> None:
        for name, alarm in _alarms(synthesize(phase=2).template("ZeroCostStack")).items():
            box = "WebBox293410087" if name.startswith("Box2") else "WebBoxB619B63F"
            dimensions = [alarm.get("Dimensions")] + [
                metric["MetricStat"]["Metric"]["Dimensions"]
                for metric in alarm.get("Metrics", [])
                if "MetricStat" in metric
            ]
            expected = [{"Name": "InstanceId", "Value": {"Ref": box}}]
            assert all(found == expected for found in dimensions if found is not None), name

    def test_status_checks_recover_and_reboot_the_box(self) -> None:
        alarms = _alarms(synthesize(phase=1).template("ZeroCostStack"))
        system, instance = alarms["BoxSystemStatus"], alarms["BoxInstanceStatus"]
        assert system["MetricName"] == "StatusCheckFailed_System"
        assert instance["MetricName"] == "StatusCheckFailed_Instance"
        for alarm, action in ((system, ":ec2:recover"), (instance, ":ec2:reboot")):
            assert alarm["Namespace"] == "AWS/EC2"
            assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
                "GreaterThanOrEqualToThreshold",
                1,
            )
            automate = [json.dumps(a) for a in alarm["AlarmActions"] if "Ref" not in a]
            assert len(automate) == 1 and action in automate[0], alarm["AlarmActions"]

    def test_health_alarm_treats_a_silent_box_as_unhealthy(self) -> None:
        alarm = _alarms(synthesize(phase=1).template("ZeroCostStack"))["BoxHealth"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("ProStudio/Box", "BoxHealthy")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
        assert alarm["TreatMissingData"] == "breaching"

    def test_the_health_probe_is_installed_on_every_box_and_may_publish_its_metric(self) -> None:
        template = synthesize(phase=2).template("ZeroCostStack")
        (probe,) = [
            a["Properties"]
            for a in resources_of_type(template, "AWS::SSM::Association").values()
            if a["Properties"]["AssociationName"].endswith("health-probe")
        ]
        assert probe["Targets"] == [
            {
                "Key": "InstanceIds",
                "Values": [{"Ref": "WebBoxB619B63F"}, {"Ref": "WebBox293410087"}],
            }
        ]
        script = "\n".join(probe["Parameters"]["commands"])
        assert "http://127.0.0.1/health" in script
        assert "put-metric-data" in script and "--metric-name BoxHealthy" in script
        assert "systemctl enable --now prostudio-health-metric.timer" in script
        (policy,) = [
            p["Properties"]
            for logical_id, p in resources_of_type(template, "AWS::IAM::Policy").items()
            if logical_id.startswith("BoxAlarmsProbePolicy")
        ]
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Action"] == "cloudwatch:PutMetricData"
        assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ProStudio/Box"}}
        ((role,),) = [[r["Ref"] for r in policy["Roles"]]]
        assert role.startswith("WebRole")

    def test_every_alarm_notifies_alarm_and_ok_to_the_box_topic(self) -> None:
        template = synthesize(phase=2).template("ZeroCostStack")
        (topic,) = [
            logical_id
            for logical_id in resources_of_type(template, "AWS::SNS::Topic")
            if logical_id.startswith("BoxAlarms")
        ]
        for name, alarm in _alarms(template).items():
            assert {"Ref": topic} in alarm["AlarmActions"], name
            assert alarm["OKActions"] == [{"Ref": topic}], name

    def test_alarm_email_is_subscribed_to_the_box_topic(self) -> None:
        template = synthesize(**WIDEST, cost_anomaly_detection="true").template("ZeroCostStack")
        (topic,) = [
            logical_id
            for logical_id in resources_of_type(template, "AWS::SNS::Topic")
            if logical_id.startswith("BoxAlarms")
        ]
        subscriptions = [
            (s["Properties"]["TopicArn"], s["Properties"]["Endpoint"])
            for s in resources_of_type(template, "AWS::SNS::Subscription").values()
        ]
        assert subscriptions == [({"Ref": topic}, WIDEST["alarm_email"])]


class TestPatching:
    def _associations(self, template: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            a["Properties"]["Name"]: a["Properties"]
            for logical_id, a in resources_of_type(template, "AWS::SSM::Association").items()
            if logical_id.startswith("Patching")
        }

    @pytest.mark.parametrize("phase", [1, 2, 3])
    def test_weekly_patch_run_one_box_at_a_time_rebooting_only_if_needed(self, phase: int) -> None:
        template = synthesize(phase=phase).template("ZeroCostStack")
        patch = self._associations(template)["AWS-RunPatchBaseline"]
        assert patch["Parameters"] == {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]}
        assert patch["ScheduleExpression"] == "cron(0 4 ? * SUN *)"
        assert patch["ApplyOnlyAtCronInterval"] is True
        assert (patch["MaxConcurrency"], patch["MaxErrors"]) == ("1", "0")
        boxes = sorted(resources_of_type(template, "AWS::EC2::Instance"))
        (target,) = patch["Targets"]
        assert sorted(value["Ref"] for value in target["Values"]) == boxes

    def test_dnf_is_pointed_at_the_newest_release_so_patching_finds_updates(self) -> None:
        override = self._associations(synthesize(phase=1).template("ZeroCostStack"))[
            "AWS-RunShellScript"
        ]
        assert override["Parameters"]["commands"] == ["echo latest > /etc/dnf/vars/releasever"]
        assert "ApplyOnlyAtCronInterval" not in override


def single_node_cache(*, engine: str = "valkey", users: bool = True) -> dict[str, Any]:
    """The phase-2 cache as ZeroCostStack builds it, on a bare stack."""
    flags = {"separate_redis": "true", "cache_engine": engine}
    if not users:
        flags["cache_auth_token"] = ZERO_COST_STACK
    settings = load_settings(context_for(flags))

    def build(stack: Stack) -> None:
        zero_cost_cache(stack, Network(stack, "Network", names=settings.names), settings)

    return construct_template(build, name=ZERO_COST_STACK)


class TestSeparateRedis:
    def test_single_node_replication_group_with_tls_and_users(self) -> None:
        template = zero_cost(phase=1, separate_redis="true")
        template.resource_count_is("AWS::ElastiCache::ReplicationGroup", 1)
        template.resource_count_is("AWS::ElastiCache::CacheCluster", 0)
        template.resource_count_is("AWS::ElastiCache::User", 3)
        template.has_resource_properties(
            "AWS::ElastiCache::ReplicationGroup",
            {
                "CacheNodeType": "cache.t3.micro",
                "NumCacheClusters": 1,
                "TransitEncryptionEnabled": True,
                "TransitEncryptionMode": "required",
                "AtRestEncryptionEnabled": True,
                "AuthToken": Match.absent(),
                "UserGroupIds": [{"Ref": Match.string_like_regexp("^CacheUsersGroup")}],
            },
        )

    def test_a_group_created_with_an_auth_token_keeps_it(self) -> None:
        template = Template.from_json(single_node_cache(users=False))
        template.resource_count_is("AWS::ElastiCache::User", 0)
        template.resource_count_is("AWS::ElastiCache::ReplicationGroup", 1)
        template.has_resource_properties(
            "AWS::ElastiCache::ReplicationGroup",
            {
                "CacheNodeType": "cache.t3.micro",
                "NumCacheClusters": 1,
                "TransitEncryptionEnabled": True,
                "TransitEncryptionMode": "required",
                "AtRestEncryptionEnabled": True,
                "AuthToken": {
                    "Fn::Join": Match.array_with(
                        [Match.array_with([Match.string_like_regexp("resolve:secretsmanager")])]
                    )
                },
                "UserGroupIds": Match.absent(),
            },
        )

    @pytest.mark.parametrize(
        ("engine", "version", "family"), [("valkey", "8.2", "valkey8"), ("redis", "7.1", "redis7")]
    )
    def test_engine_flag_with_keyspace_notifications_for_a_live_copy(
        self, engine: str, version: str, family: str
    ) -> None:
        template = single_node_cache(engine=engine)
        (group,) = resources_of_type(template, "AWS::ElastiCache::ReplicationGroup").values()
        ((parameters_id, parameter_group),) = resources_of_type(
            template, "AWS::ElastiCache::ParameterGroup"
        ).items()
        assert (group["Properties"]["Engine"], group["Properties"]["EngineVersion"]) == (
            engine,
            version,
        )
        assert group["Properties"]["CacheParameterGroupName"] == {"Ref": parameters_id}
        assert parameter_group["Properties"]["CacheParameterGroupFamily"] == family
        assert parameter_group["Properties"]["Properties"] == {"notify-keyspace-events": "AKE"}

    def test_the_box_uses_the_cache(self) -> None:
        template = synthesize(phase=1, separate_redis="true").template("ZeroCostStack")
        env = template["Resources"]["WebBoxB619B63F"]["Metadata"]["AWS::CloudFormation::Init"][
            "app"
        ]["commands"]["10-provision"]["env"]
        assert env["PROSTUDIO_REDIS_MODE"] == "external"
        assert env["REDIS_TLS"] == "true"
        assert env["REDIS_HOST"]["Fn::GetAtt"][1] == "PrimaryEndPoint.Address"

    def test_cache_admits_only_the_boxes_and_the_migration_clients(self) -> None:
        template = synthesize(phase=1, separate_redis="true").template("ZeroCostStack")
        rules = [rule for rule in ingress_rules(template) if rule.get("FromPort") == 6380]
        sources = sorted(rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in rules)
        assert len(sources) == 2
        assert sources[0].startswith("HandoffMigrationClients")
        assert sources[1].startswith("WebSecurityGroup")
        assert not any("CidrIp" in rule for rule in rules)

    def test_turning_it_off_keeps_the_box(self) -> None:
        on = synthesize(phase=1, separate_redis="true").template("ZeroCostStack")
        off = synthesize(phase=1).template("ZeroCostStack")
        assert "WebBoxB619B63F" in on["Resources"]
        assert "WebBoxB619B63F" in off["Resources"]
        assert not resources_of_type(off, "AWS::ElastiCache::ReplicationGroup")


class TestLoadBalancer:
    def test_https_listener_with_modern_policy_and_http_redirect(self) -> None:
        template = zero_cost(phase=1, alb="true")
        template.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::Listener",
            {"Port": 443, "Protocol": "HTTPS", "SslPolicy": Match.string_like_regexp("TLS13")},
        )
        template.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::Listener",
            {
                "Port": 80,
                "DefaultActions": [
                    Match.object_like(
                        {
                            "Type": "redirect",
                            "RedirectConfig": Match.object_like(
                                {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}
                            ),
                        }
                    )
                ],
            },
        )

    def test_drops_invalid_headers_and_logs_access(self) -> None:
        template = zero_cost(phase=1, alb="true")
        template.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            {
                "LoadBalancerAttributes": Match.array_with(
                    [
                        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                        {"Key": "access_logs.s3.enabled", "Value": "true"},
                    ]
                )
            },
        )

    def test_targets_are_health_checked_on_health(self) -> None:
        template = zero_cost(phase=1, alb="true")
        template.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            {"HealthCheckPath": "/health", "Port": 80, "TargetType": "instance"},
        )

    def test_certificate_is_dns_validated_in_the_zone_without_an_arn(self) -> None:
        template = zero_cost(phase=1, alb="true")
        template.has_resource_properties(
            "AWS::CertificateManager::Certificate",
            {
                "DomainName": "api.prostudio.example.com",
                "ValidationMethod": "DNS",
                "DomainValidationOptions": [
                    Match.object_like({"HostedZoneId": "Z0000000000EXAMPLE"})
                ],
            },
        )

    def test_an_imported_certificate_arn_is_used_as_is(self) -> None:
        arn = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
        template = zero_cost(phase=1, alb="true", certificate_arn=arn)
        template.resource_count_is("AWS::CertificateManager::Certificate", 0)
        template.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::Listener",
            {"Port": 443, "Certificates": [{"CertificateArn": arn}]},
        )

    def test_boxes_then_accept_web_traffic_only_from_the_alb(self) -> None:
        template = synthesize(phase=1, alb="true").template("ZeroCostStack")
        box_rules = [
            rule
            for rule in ingress_rules(template)
            if rule.get("GroupId", {}).get("Fn::GetAtt", [""])[0].startswith("WebSecurityGroup")
            or rule.get("GroupLogicalId", "").startswith("WebSecurityGroup")
        ]
        web = [rule for rule in box_rules if rule.get("FromPort") in (80, 443)]
        assert [rule["FromPort"] for rule in web] == [80]
        assert web[0]["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith(
            "LoadBalancerAlbSecurityGroup"
        )
        assert not any("CidrIp" in rule for rule in box_rules)


class TestSecondInstance:
    def test_two_identical_boxes_behind_the_alb_on_the_same_redis(self) -> None:
        template = synthesize(phase=2).template("ZeroCostStack")
        boxes = resources_of_type(template, "AWS::EC2::Instance")
        assert sorted(boxes) == ["WebBox293410087", "WebBoxB619B63F"]
        first, second = (boxes[key] for key in sorted(boxes, reverse=True))
        assert first["Properties"]["InstanceType"] == second["Properties"]["InstanceType"]
        env = [
            box["Metadata"]["AWS::CloudFormation::Init"]["app"]["commands"]["10-provision"]["env"]
            for box in (first, second)
        ]
        assert env[0]["REDIS_HOST"] == env[1]["REDIS_HOST"]
        target_group = next(
            iter(resources_of_type(template, "AWS::ElasticLoadBalancingV2::TargetGroup").values())
        )
        assert sorted(target["Id"]["Ref"] for target in target_group["Properties"]["Targets"]) == [
            "WebBox293410087",
            "WebBoxB619B63F",
        ]


class TestHandoff:
    def test_old_redis_is_published_for_production(self) -> None:
        phase_1 = zero_cost(phase=1)
        for name in (
            PRODUCTION_NAMES.old_redis_host,
            PRODUCTION_NAMES.old_redis_port,
            PRODUCTION_NAMES.old_redis_tls,
            PRODUCTION_NAMES.old_redis_secret_arn,
            PRODUCTION_NAMES.redis_migration_client_sg,
        ):
            phase_1.has_resource_properties("AWS::SSM::Parameter", {"Name": name})


def _old_record(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((logical_id, record),) = resources_of_type(template, "AWS::Route53::RecordSet").items()
    return logical_id, record


class TestPublicName:
    """The "old" weighted record lives here, beside the entry it points at."""

    def test_the_box_address_with_a_short_ttl_once_it_is_open_to_the_internet(self) -> None:
        template = synthesize(phase=1, **REAL_ZONE).template("ZeroCostStack")
        _, record = _old_record(template)
        properties = record["Properties"]
        assert properties["SetIdentifier"] == "old"
        assert properties["Weight"] == 100
        assert properties["ResourceRecords"] == [{"Ref": "WebElasticIpB7D40D0A"}]
        assert int(properties["TTL"]) <= 60
        # It moves only once the box admits the internet and holds the address
        public = [
            logical_id
            for logical_id, rule in resources_of_type(
                template, "AWS::EC2::SecurityGroupIngress"
            ).items()
            if rule["Properties"].get("CidrIp") == "0.0.0.0/0"
        ]
        association = list(resources_of_type(template, "AWS::EC2::EIPAssociation"))
        assert len(public) == 1
        assert {*public, *association} <= set(record["DependsOn"])

    def test_an_alias_of_the_alb_once_the_alb_path_exists(self) -> None:
        template = synthesize(phase=1, alb="true", **REAL_ZONE).template("ZeroCostStack")
        _, record = _old_record(template)
        (balancer,) = resources_of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
        assert record["Properties"]["AliasTarget"] == {
            "DNSName": {"Fn::GetAtt": [balancer, "DNSName"]},
            "HostedZoneId": {"Fn::GetAtt": [balancer, "CanonicalHostedZoneID"]},
            "EvaluateTargetHealth": True,
        }
        listeners = resources_of_type(template, "AWS::ElasticLoadBalancingV2::Listener")
        from_alb = [
            logical_id
            for logical_id, rule in resources_of_type(
                template, "AWS::EC2::SecurityGroupIngress"
            ).items()
            if "SourceSecurityGroupId" in rule["Properties"]
            and rule["Properties"]["FromPort"] == 80
        ]
        assert {balancer, *listeners, *from_alb} <= set(record["DependsOn"])

    def test_no_record_while_the_zone_is_the_repository_example(self) -> None:
        for phase in (1, 2):
            template = synthesize(phase=phase).template("ZeroCostStack")
            assert resources_of_type(template, "AWS::Route53::RecordSet") == {}


# The region reaches the stacks only as a value (names, ARNs, the box role's name) and through
# CDK's region tables (the ELB log-delivery account): one region besides the default shows
# that each follows it; a third region's templates differed from this one's only in those values.
# Phase 2 builds all of phase 1 but the box's web port open to the internet, which names no region.
@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        {"phase": "2"},
        {"phase": "3", "migrate_data": "true", "shift_traffic": "true"},
    ],
    ids=["phase2", "phase3-migration"],
)
def test_another_region_synthesizes_clean(flags: dict[str, str]) -> None:
    synthesis = synthesize(**flags, region=SECOND_REGION)
    assert synthesis.error is None, synthesis.error
    assert synthesis.violations() == []
    for template in synthesis.templates.values():
        text = json.dumps(template)
        assert "us-east-1" not in text
        assert cfn_lint_errors(template, SECOND_REGION) == []


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1", "eu-west"])
def test_regions_outside_the_commercial_partition_are_refused(region: str) -> None:
    with pytest.raises(ConfigError, match=rf"^region='{region}' is not a commercial AWS region"):
        load_settings(context_for({"region": region}))


def test_an_unknown_cache_engine_is_refused_in_one_line() -> None:
    with pytest.raises(
        ConfigError, match=r"^cache_engine='memcached' is not allowed; use one of valkey, redis$"
    ):
        load_settings(context_for({"cache_engine": "memcached"}))
