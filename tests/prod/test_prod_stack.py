"""Fine-grained assertions on ProdStack, one group per requirement of the production issue."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import Duration
from prod_support import PHASE3, PHASE3_MIGRATION, only
from synth_support import REAL_ZONE, ROOT, context_for, resources_of_type, synthesize

from infra.config import ConfigError, load_settings
from infra.constructs import polled_provider
from infra.parameters import PRODUCTION_NAMES

Template = dict[str, Any]


def ssm_ref(template: Template, parameter_name: str) -> dict[str, str]:
    """The Ref to the deploy-time SSM parameter value CDK adds for `parameter_name`."""
    (logical_id,) = [
        logical_id
        for logical_id, parameter in template["Parameters"].items()
        if parameter.get("Default") == parameter_name
        and parameter["Type"].startswith("AWS::SSM::Parameter::Value")
    ]
    return {"Ref": logical_id}


def split_list(template: Template, parameter_name: str) -> list[Any]:
    ref = ssm_ref(template, parameter_name)
    return [{"Fn::Select": [index, {"Fn::Split": [",", ref]}]} for index in (0, 1)]


def ref_of(template: Template, resource_type: str, id_prefix: str = "") -> str:
    (logical_id,) = [
        logical_id
        for logical_id in resources_of_type(template, resource_type)
        if logical_id.startswith(id_prefix)
    ]
    return logical_id


def group_id(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "GroupId"]}


def ingress_rules(template: Template, security_group: str) -> list[dict[str, Any]]:
    inline = template["Resources"][security_group]["Properties"].get("SecurityGroupIngress", [])
    separate = [
        resource["Properties"]
        for resource in resources_of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if resource["Properties"]["GroupId"] == group_id(security_group)
    ]
    return [*inline, *separate]


# --- below phase 3 -----------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["1", "2"])
def test_before_phase_3_only_the_phase_and_the_guard_exist(phase: str) -> None:
    synthesis = synthesize(phase=phase, **REAL_ZONE)
    template = synthesis.template("ProdStack")
    types = {
        resource["Type"]
        for resource in template["Resources"].values()
        if resource["Type"] != "AWS::CDK::Metadata"
    }
    # The phase, and the teardown guard (its function, role and log group) that refuses a
    # deploy removing production once it exists; no record: "old" lives in ZeroCostStack
    assert types == {
        "AWS::SSM::Parameter",
        "Custom::TeardownGuard",
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::Logs::LogGroup",
    }
    (phase_parameter,) = resources_of_type(template, "AWS::SSM::Parameter").values()
    assert phase_parameter["Properties"]["Value"] == phase
    manifest = json.loads((synthesis.outdir / "ProdStack.assets.json").read_text())
    assert manifest.get("dockerImages", {}) == {}


# --- network and egress ------------------------------------------------------------------


def test_production_creates_no_network_of_its_own(prod: Template) -> None:
    for resource_type in (
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::NatGateway",
        "AWS::EC2::InternetGateway",
    ):
        assert resources_of_type(prod, resource_type) == {}, resource_type


def test_the_stacks_share_nothing_through_cloudformation_exports(prod: Template) -> None:
    zero_cost = synthesize(**PHASE3).template("ZeroCostStack")
    for template in (prod, zero_cost):
        assert "Fn::ImportValue" not in json.dumps(template)
        assert all("Export" not in output for output in template.get("Outputs", {}).values())


def test_vpc_and_subnets_are_read_from_ssm(prod: Template) -> None:
    vpc = ssm_ref(prod, PRODUCTION_NAMES.vpc_id)
    for security_group in resources_of_type(prod, "AWS::EC2::SecurityGroup").values():
        assert security_group["Properties"]["VpcId"] == vpc
    _, service = only(prod, "AWS::ECS::Service")
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == split_list(
        prod, PRODUCTION_NAMES.app_subnet_ids
    )
    _, balancer = only(prod, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Subnets"] == split_list(prod, PRODUCTION_NAMES.public_subnet_ids)
    _, cache_subnets = only(prod, "AWS::ElastiCache::SubnetGroup")
    assert cache_subnets["SubnetIds"] == split_list(prod, PRODUCTION_NAMES.data_subnet_ids)


def test_private_subnets_reach_aws_apis_through_vpc_endpoints(prod: Template) -> None:
    endpoints = [r["Properties"] for r in resources_of_type(prod, "AWS::EC2::VPCEndpoint").values()]
    interface = {
        e["ServiceName"].removeprefix("com.amazonaws.us-east-1.")
        for e in endpoints
        if e.get("VpcEndpointType") == "Interface"
    }
    assert interface == {"ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm"}
    app_subnets = split_list(prod, PRODUCTION_NAMES.app_subnet_ids)
    for endpoint in endpoints:
        if endpoint.get("VpcEndpointType") == "Interface":
            assert endpoint["PrivateDnsEnabled"] is True
            assert endpoint["SubnetIds"] == app_subnets
    gateways = [e for e in endpoints if e.get("VpcEndpointType", "Gateway") == "Gateway"]
    # Gateway service names are joined with the region: the last part names the service.
    assert sorted(e["ServiceName"]["Fn::Join"][1][-1] for e in gateways) == [".dynamodb", ".s3"]
    for gateway in gateways:
        assert gateway["RouteTableIds"] == split_list(prod, PRODUCTION_NAMES.app_route_table_ids)


def _sources(rules: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(rule["SourceSecurityGroupId"], sort_keys=True) for rule in rules)


def _refs(*refs: dict[str, Any]) -> list[str]:
    return sorted(json.dumps(ref, sort_keys=True) for ref in refs)


def test_endpoints_admit_https_from_every_client_of_aws_apis_in_the_vpc(prod: Template) -> None:
    """Private DNS sends the whole VPC's calls to the endpoints: the boxes included."""
    endpoints_group = ref_of(prod, "AWS::EC2::SecurityGroup", "Egress")
    rules = ingress_rules(prod, endpoints_group)
    assert {(rule["FromPort"], rule["ToPort"]) for rule in rules} == {(443, 443)}
    assert _sources(rules) == _refs(
        group_id(ref_of(prod, "AWS::EC2::SecurityGroup", "Service")),
        ssm_ref(prod, PRODUCTION_NAMES.redis_migration_client_sg),
        ssm_ref(prod, PRODUCTION_NAMES.box_security_group),
    )


# What the boxes call: provisioning (Secrets Manager, S3 for the asset, CloudFormation for
# cfn-init/cfn-signal/cfn-hup), the SSM agent (ssm, ssmmessages, ec2messages) and the
# /health probe (CloudWatch).
BOX_SERVICES = (
    "secretsmanager",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "s3",
    "cloudformation",
    "monitoring",
)


@pytest.mark.parametrize("flags", [PHASE3, PHASE3_MIGRATION], ids=["phase3", "migration"])
@pytest.mark.parametrize("service", BOX_SERVICES)
def test_the_boxes_reach_every_aws_api_they_call(service: str, flags: dict[str, str]) -> None:
    """Either production has no private-DNS interface endpoint for the service (the boxes'
    public subnets then reach its public address), or the endpoint admits the boxes."""
    prod = synthesize(**flags).template("ProdStack")
    zero_cost = synthesize(**flags).template("ZeroCostStack")
    endpoints = [
        r["Properties"]
        for r in resources_of_type(prod, "AWS::EC2::VPCEndpoint").values()
        if r["Properties"].get("VpcEndpointType") == "Interface"
        and r["Properties"]["ServiceName"].endswith(f".{service}")
    ]
    if not endpoints:
        public_route = [
            route["Properties"]
            for logical_id, route in resources_of_type(zero_cost, "AWS::EC2::Route").items()
            if logical_id.startswith("NetworkVpcpublicSubnet")
        ]
        assert all(route["DestinationCidrBlock"] == "0.0.0.0/0" for route in public_route)
        assert len(public_route) == 2
        (box_group,) = [
            group["Properties"]
            for logical_id, group in resources_of_type(zero_cost, "AWS::EC2::SecurityGroup").items()
            if logical_id.startswith("WebSecurityGroup")
        ]
        assert {
            "CidrIp": "0.0.0.0/0",
            "Description": "Allow all outbound traffic by default",
            "IpProtocol": "-1",
        } in box_group["SecurityGroupEgress"]
        return
    (endpoint,) = endpoints
    assert endpoint["PrivateDnsEnabled"] is True
    admitted = [
        json.dumps(rule["SourceSecurityGroupId"], sort_keys=True)
        for group in endpoint["SecurityGroupIds"]
        for rule in ingress_rules(prod, group["Fn::GetAtt"][0])
        if rule["FromPort"] <= 443 <= rule["ToPort"]
    ]
    assert (
        json.dumps(ssm_ref(prod, PRODUCTION_NAMES.box_security_group), sort_keys=True) in admitted
    )


def test_the_box_security_group_is_published_for_production() -> None:
    zero_cost = synthesize(**PHASE3).template("ZeroCostStack")
    (parameter,) = [
        r["Properties"]
        for r in resources_of_type(zero_cost, "AWS::SSM::Parameter").values()
        if r["Properties"]["Name"] == PRODUCTION_NAMES.box_security_group
    ]
    assert parameter["Value"]["Fn::GetAtt"][0].startswith("WebSecurityGroup")


# --- migration Lambdas' own security group -----------------------------------------------


# --- load balancer -----------------------------------------------------------------------


def test_https_only_with_a_modern_policy_and_http_redirected(prod: Template) -> None:
    listeners = {
        r["Properties"]["Port"]: r["Properties"]
        for r in resources_of_type(prod, "AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert set(listeners) == {80, 443}
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert listeners[443]["Certificates"] == [
        {"CertificateArn": {"Ref": ref_of(prod, "AWS::CertificateManager::Certificate")}}
    ]
    (redirect,) = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"] == {
        "Port": "443",
        "Protocol": "HTTPS",
        "StatusCode": "HTTP_301",
    }


def _balancer_attributes(template: Template) -> dict[str, str]:
    _, balancer = only(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    return {item["Key"]: item["Value"] for item in balancer["LoadBalancerAttributes"]}


def test_balancer_drops_invalid_headers_and_logs_access(prod: Template) -> None:
    attributes = _balancer_attributes(prod)
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    _, balancer = only(prod, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Scheme"] == "internet-facing"


def test_deletion_protection_follows_its_flag(prod: Template, variant: Template) -> None:
    assert _balancer_attributes(prod)["deletion_protection.enabled"] == "false"
    assert _balancer_attributes(variant)["deletion_protection.enabled"] == "true"


def test_certificate_is_dns_validated_in_the_hosted_zone(prod: Template) -> None:
    _, certificate = only(prod, "AWS::CertificateManager::Certificate")
    assert certificate["DomainName"] == "api.prostudio.example.com"
    assert certificate["ValidationMethod"] == "DNS"
    assert certificate["DomainValidationOptions"] == [
        {"DomainName": "api.prostudio.example.com", "HostedZoneId": "Z0000000000EXAMPLE"}
    ]


# --- Fargate service ---------------------------------------------------------------------


def _container(template: Template) -> dict[str, Any]:
    _, task = only(template, "AWS::ECS::TaskDefinition")
    (container,) = task["ContainerDefinitions"]
    return container


def test_container_settings_are_plain_and_redis_credentials_are_secrets(prod: Template) -> None:
    container = _container(prod)
    assert {item["Name"]: item["Value"] for item in container["Environment"]} == {
        "API_WORKERS": "2",
        "MAX_MEMORY_MB": "3072",
        "REDIS_PORT": "6380",
        "REDIS_TLS": "true",
        "REDIS_USERNAME": "service",
    }
    secrets = {item["Name"]: item["ValueFrom"] for item in container["Secrets"]}
    assert set(secrets) == {"REDIS_HOST", "REDIS_AUTH_TOKEN"}
    group_logical_id, group = only(prod, "AWS::ElastiCache::ReplicationGroup")
    service_password = ref_of(prod, "AWS::SecretsManager::Secret", "CacheUsersServicePassword")
    assert secrets["REDIS_AUTH_TOKEN"] == {"Ref": service_password}
    assert "AuthToken" not in group
    host_parameter_id = ref_of(prod, "AWS::SSM::Parameter", "ServiceRedisHost")
    host_parameter = prod["Resources"][host_parameter_id]["Properties"]
    assert host_parameter["Value"] == {"Fn::GetAtt": [group_logical_id, "PrimaryEndPoint.Address"]}
    assert host_parameter["Name"] == PRODUCTION_NAMES.prod_redis_host
    assert {"Ref": host_parameter_id} in secrets["REDIS_HOST"]["Fn::Join"][1]
    assert "PrimaryEndPoint" not in json.dumps(container["Environment"])


def test_container_serves_port_8000_and_logs_with_retention(prod: Template) -> None:
    container = _container(prod)
    assert container["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]
    log_group_id = ref_of(prod, "AWS::Logs::LogGroup", "ServiceLogs")
    log_group = prod["Resources"][log_group_id]["Properties"]
    assert log_group["RetentionInDays"] == 30
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": log_group_id}
    assert container["HealthCheck"]["Command"] == ["CMD", "python", "-m", "prostudio.healthcheck"]
    _, task = only(prod, "AWS::ECS::TaskDefinition")
    assert (task["Cpu"], task["Memory"]) == ("2048", "4096")
    assert task["RequiresCompatibilities"] == ["FARGATE"]


def test_image_is_an_asset_of_the_service_dockerfile() -> None:
    synthesis = synthesize(**PHASE3)
    manifest = json.loads((synthesis.outdir / "ProdStack.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    staged = synthesis.outdir / image["source"]["directory"]
    service_dir = ROOT / "runtime" / "service"
    assert (staged / "Dockerfile").read_bytes() == (service_dir / "Dockerfile").read_bytes()
    assert not list(staged.rglob("__pycache__"))
    tag = image["destinations"][next(iter(image["destinations"]))]["imageTag"]
    assert tag in json.dumps(_container(synthesis.template("ProdStack"))["Image"])


def test_service_deploys_safely_in_private_subnets(prod: Template) -> None:
    _, service = only(prod, "AWS::ECS::Service")
    assert service["LaunchType"] == "FARGATE"
    # A desired count in the template would reset a scaled-out service on every deploy.
    assert "DesiredCount" not in service
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100
    assert service["DeploymentConfiguration"]["MaximumPercent"] == 200
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    (attachment,) = service["LoadBalancers"]
    assert attachment["ContainerPort"] == 8000
    _, cluster = only(prod, "AWS::ECS::Cluster")
    assert cluster["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enhanced"}]


def test_targets_are_health_checked_on_health(prod: Template) -> None:
    _, target_group = only(prod, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert target_group["HealthCheckPath"] == "/health"
    assert target_group["Port"] == 8000
    assert target_group["TargetType"] == "ip"


@pytest.mark.parametrize(("fixture", "low", "high"), [("prod", 2, 20), ("variant", 3, 12)])
def test_autoscaling_on_cpu_and_requests_per_target(
    fixture: str, low: int, high: int, request: pytest.FixtureRequest
) -> None:
    template: Template = request.getfixturevalue(fixture)
    _, service = only(template, "AWS::ECS::Service")
    assert "DesiredCount" not in service
    _, target = only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (low, high)
    metrics = {
        policy["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]
        for policy in resources_of_type(
            template, "AWS::ApplicationAutoScaling::ScalingPolicy"
        ).values()
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


def test_image_and_tasks_pin_one_cpu_architecture(prod: Template) -> None:
    _, task = only(prod, "AWS::ECS::TaskDefinition")
    assert task["RuntimePlatform"] == {
        "CpuArchitecture": "ARM64",
        "OperatingSystemFamily": "LINUX",
    }
    synthesis = synthesize(**PHASE3)
    manifest = json.loads((synthesis.outdir / "ProdStack.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["platform"] == "linux/arm64"


def test_task_role_has_no_aws_permissions(prod: Template) -> None:
    task_role = ref_of(prod, "AWS::IAM::Role", "ServiceTaskRole")
    assert "ManagedPolicyArns" not in prod["Resources"][task_role]["Properties"]
    for policy in resources_of_type(prod, "AWS::IAM::Policy").values():
        assert {"Ref": task_role} not in policy["Properties"]["Roles"]


def test_tasks_admit_the_load_balancer_only(prod: Template) -> None:
    service_group = ref_of(prod, "AWS::EC2::SecurityGroup", "Service")
    (rule,) = ingress_rules(prod, service_group)
    assert (rule["FromPort"], rule["ToPort"]) == (8000, 8000)
    assert rule["SourceSecurityGroupId"] == group_id(
        ref_of(prod, "AWS::EC2::SecurityGroup", "LoadBalancer")
    )


# --- ElastiCache -------------------------------------------------------------------------


def test_cache_is_three_encrypted_nodes_with_failover(prod: Template) -> None:
    _, group = only(prod, "AWS::ElastiCache::ReplicationGroup")
    assert group["NumCacheClusters"] == 3
    assert group["AutomaticFailoverEnabled"] is True
    assert group["MultiAZEnabled"] is True
    assert group["TransitEncryptionEnabled"] is True
    assert group["TransitEncryptionMode"] == "required"
    assert group["AtRestEncryptionEnabled"] is True
    key_id = ref_of(prod, "AWS::KMS::Key", "CacheKey")
    assert group["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert prod["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    assert group["CacheNodeType"] == "cache.r7g.large"
    assert group["UserGroupIds"] == [{"Ref": ref_of(prod, "AWS::ElastiCache::UserGroup", "Cache")}]
    assert "AuthToken" not in group


def test_node_type_follows_its_flag(variant: Template) -> None:
    _, group = only(variant, "AWS::ElastiCache::ReplicationGroup")
    assert group["CacheNodeType"] == "cache.r7g.xlarge"


def test_cache_keeps_snapshots_and_a_final_one(prod: Template) -> None:
    group_id_, group = only(prod, "AWS::ElastiCache::ReplicationGroup")
    assert group["SnapshotRetentionLimit"] == 7
    resource = prod["Resources"][group_id_]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Snapshot", "Snapshot")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_engine_is_at_least_every_source_redis(prod: Template) -> None:
    """DUMP payloads restore only on the same or a newer engine."""
    _, group = only(prod, "AWS::ElastiCache::ReplicationGroup")
    production = _version(group["EngineVersion"])
    zero_cost = synthesize(**PHASE3).template("ZeroCostStack")
    _, phase_two_cache = only(zero_cost, "AWS::ElastiCache::ReplicationGroup")
    assert production >= _version(phase_two_cache["EngineVersion"])
    provision = (ROOT / "runtime" / "service" / "deploy" / "provision.sh").read_text()
    (box_major,) = set(re.findall(r"\bredis(\d+)\b", provision))
    # Amazon Linux 2023's redis6 package is Redis 6.2.
    assert production >= (int(box_major), 2)


def test_cache_admits_the_service_and_the_migration_clients_only(prod: Template) -> None:
    cache_group = ref_of(prod, "AWS::EC2::SecurityGroup", "Cache")
    rules = ingress_rules(prod, cache_group)
    assert {(rule["FromPort"], rule["ToPort"]) for rule in rules} == {(6380, 6380)}
    assert _sources(rules) == _refs(
        group_id(ref_of(prod, "AWS::EC2::SecurityGroup", "Service")),
        ssm_ref(prod, PRODUCTION_NAMES.redis_migration_client_sg),
    )


@pytest.mark.parametrize(
    ("fixture", "engine", "version", "family"),
    [("prod", "valkey", "8.2", "valkey8"), ("variant", "redis", "7.1", "redis7")],
)
def test_cache_engine_follows_its_flag_with_keyspace_notifications(
    fixture: str, engine: str, version: str, family: str, request: pytest.FixtureRequest
) -> None:
    template: Template = request.getfixturevalue(fixture)
    _, group = only(template, "AWS::ElastiCache::ReplicationGroup")
    assert (group["Engine"], group["EngineVersion"]) == (engine, version)
    parameters_id, parameter_group = only(template, "AWS::ElastiCache::ParameterGroup")
    assert group["CacheParameterGroupName"] == {"Ref": parameters_id}
    assert parameter_group["CacheParameterGroupFamily"] == family
    events = parameter_group["Properties"]["notify-keyspace-events"]
    # K or E selects a channel, A every event class: what a live copy follows.
    assert ("K" in events or "E" in events) and "A" in events


def test_both_caches_run_one_engine_so_the_copy_restores_either_way() -> None:
    for flags in (PHASE3, {**PHASE3, "cache_engine": "redis"}):
        synthesis = synthesize(**flags)
        engines = {
            (group["Properties"]["Engine"], group["Properties"]["EngineVersion"])
            for stack in ("ZeroCostStack", "ProdStack")
            for group in resources_of_type(
                synthesis.template(stack), "AWS::ElastiCache::ReplicationGroup"
            ).values()
        }
        assert len(engines) == 1, engines


# --- DNS ---------------------------------------------------------------------------------


def _records(template: Template) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["SetIdentifier"]: r["Properties"]
        for r in resources_of_type(template, "AWS::Route53::RecordSet").values()
    }


def test_two_weighted_records_start_all_on_old() -> None:
    synthesis = synthesize(**PHASE3, **REAL_ZONE)
    records = {
        **_records(synthesis.template("ZeroCostStack")),
        **_records(synthesis.template("ProdStack")),
    }
    assert set(records) == {"old", "new"}
    for record in records.values():
        assert record["Name"] == "api.prostudio.io."
        assert record["HostedZoneId"] == "Z0123456789ABCDEFGHIJ"
        assert record["Type"] == "A"
    assert (records["old"]["Weight"], records["new"]["Weight"]) == (100, 0)


def test_production_holds_only_the_new_record(prod: Template) -> None:
    assert set(_records(prod)) == {"new"}


def test_new_record_aliases_the_production_balancer(prod: Template) -> None:
    balancer = ref_of(prod, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert _records(prod)["new"]["AliasTarget"] == {
        "DNSName": {"Fn::GetAtt": [balancer, "DNSName"]},
        "HostedZoneId": {"Fn::GetAtt": [balancer, "CanonicalHostedZoneID"]},
        "EvaluateTargetHealth": True,
    }


def test_phase_3_without_the_zero_cost_alb_is_refused_in_one_line() -> None:
    """ "old" must serve HTTPS like "new": the box's nginx serves HTTP only."""
    with pytest.raises(ConfigError, match=r"^phase=3 needs alb=true: ") as refused:
        load_settings(context_for({"phase": "3", "alb": "false", "instances": "1"}))
    assert "\n" not in str(refused.value)


# --- monitoring --------------------------------------------------------------------------


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id.removeprefix("Monitoring")[:-8]: resource["Properties"]
        for logical_id, resource in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
    }


def _metric_names(alarm: dict[str, Any]) -> set[str]:
    if "MetricName" in alarm:
        return {alarm["MetricName"]}
    return {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}


def test_alarms_cover_the_success_criteria(prod: Template) -> None:
    alarms = _alarms(prod)
    expected = {
        "P99Latency": ({"TargetResponseTime"}, "GreaterThanThreshold", 0.1),
        "ServerErrorRate": (
            {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "RequestCount"},
            "GreaterThanThreshold",
            1,
        ),
        "UnhealthyTargets": ({"UnHealthyHostCount"}, "GreaterThanThreshold", 0),
        "ServiceCpu": ({"CPUUtilization"}, "GreaterThanThreshold", 80),
        "ServiceMemory": ({"MemoryUtilization"}, "GreaterThanThreshold", 80),
        "ErrorLogs": ({"ServiceErrors"}, "GreaterThanThreshold", 0),
        "CacheHitRate": ({"CacheHits", "CacheMisses"}, "LessThanThreshold", 90),
        "CacheCpu": ({"EngineCPUUtilization"}, "GreaterThanThreshold", 80),
        "CacheMemory": ({"DatabaseMemoryUsagePercentage"}, "GreaterThanThreshold", 80),
        "CacheEvictions": ({"Evictions"}, "GreaterThanThreshold", 0),
        "CacheReplicationLag": ({"ReplicationLag"}, "GreaterThanThreshold", 1),
        # What the "new" record's Route53 health check follows (failover_alarms.py)
        "FailoverUnhealthyTargets": ({"UnHealthyHostCount"}, "GreaterThanThreshold", 0),
        "FailoverLatency": ({"TargetResponseTime"}, "GreaterThanThreshold", 0.1),
        "FailoverTargetErrors": ({"HTTPCode_Target_5XX_Count"}, "GreaterThanThreshold", 60),
        "FailoverLoadBalancerErrors": ({"HTTPCode_ELB_5XX_Count"}, "GreaterThanThreshold", 60),
    }
    actual = {
        name: (_metric_names(alarm), alarm["ComparisonOperator"], alarm["Threshold"])
        for name, alarm in alarms.items()
    }
    assert actual == expected
    assert alarms["P99Latency"]["ExtendedStatistic"] == "p99"


def test_every_alarm_notifies_the_topic_and_ignores_missing_data(prod: Template) -> None:
    topic = {"Ref": ref_of(prod, "AWS::SNS::Topic")}
    for name, alarm in _alarms(prod).items():
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name
        assert alarm["TreatMissingData"] == "notBreaching", name


def test_cache_alarms_watch_every_node_of_the_group(prod: Template) -> None:
    group = ref_of(prod, "AWS::ElastiCache::ReplicationGroup")
    for name, alarm in _alarms(prod).items():
        if not name.startswith("Cache"):
            continue
        nodes = {
            json.dumps(dimension["Value"], sort_keys=True)
            for metric in alarm["Metrics"]
            if "MetricStat" in metric
            for dimension in metric["MetricStat"]["Metric"]["Dimensions"]
        }
        assert nodes == {
            json.dumps({"Fn::Join": ["", [{"Ref": group}, f"-00{index}"]]}, sort_keys=True)
            for index in (1, 2, 3)
        }, name


def test_error_log_lines_are_counted(prod: Template) -> None:
    _, metric_filter = only(prod, "AWS::Logs::MetricFilter")
    assert metric_filter["FilterPattern"] == '{ $.level = "error" }'
    assert metric_filter["LogGroupName"] == {
        "Ref": ref_of(prod, "AWS::Logs::LogGroup", "ServiceLogs")
    }
    (transformation,) = metric_filter["MetricTransformations"]
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (
        "ProStudio",
        "ServiceErrors",
    )


def test_topic_is_encrypted_and_refuses_plain_http(prod: Template) -> None:
    _, topic = only(prod, "AWS::SNS::Topic")
    key = ref_of(prod, "AWS::KMS::Key", "MonitoringTopicKey")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert prod["Resources"][key]["Properties"]["EnableKeyRotation"] is True
    _, policy = only(prod, "AWS::SNS::TopicPolicy")
    # Besides the budgets' publish grant (tests/operator/test_budgets.py), one Deny.
    (statement,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alarm_email_is_subscribed_only_when_set(prod: Template, variant: Template) -> None:
    assert resources_of_type(prod, "AWS::SNS::Subscription") == {}
    _, subscription = only(variant, "AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")


def test_dashboard_shows_every_alarm(prod: Template) -> None:
    _, dashboard = only(prod, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["DashboardBody"])
    for logical_id in resources_of_type(prod, "AWS::CloudWatch::Alarm"):
        assert json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}) in body


def test_health_gate_alarms_are_published(prod: Template) -> None:
    value = prod["Outputs"]["HealthGateAlarms"]["Value"]
    gates = [part["Ref"] for part in value["Fn::Join"][1] if isinstance(part, dict)]
    assert [gate.removeprefix("Monitoring")[:-8] for gate in gates] == [
        "P99Latency",
        "ServerErrorRate",
        "UnhealthyTargets",
    ]


# --- the Provider waiter ------------------------------------------------------------------


def test_a_waiter_without_room_for_one_poll_is_refused() -> None:
    with pytest.raises(ValueError, match="no room for a single poll"):
        polled_provider.waiter_attempts(
            Duration.seconds(60), Duration.seconds(15), Duration.seconds(90)
        )
