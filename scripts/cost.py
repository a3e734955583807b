#!/usr/bin/env python3
"""Monthly cost of each phase, resource by resource, from the synthesized templates.

    scripts/cost.py                          # synth phases 1-3 (default flags), price them
    scripts/cost.py --assembly cdk.out       # price an existing cloud assembly
    scripts/cost.py --compare FROM_DIR TO_DIR  # the cost delta between two assemblies
    scripts/cost.py --refresh-prices         # rewrite the price table from the AWS Price List API

Installed as `prostudio-cost` by `make synth` (the same script; `make cost` runs it too).

Prices are on-demand list prices from scripts/prices/<region>.json (its date and sources inside).
Usage-based items (load balancer capacity, logs, queries, storage) are priced at the stated
assumptions below. The last stdout line is one JSON object: {"region", "prices", "phases"}.

Exit codes: 0 priced; 2 bad input (an option, a missing or malformed template or price table);
3 --refresh-prices without usable AWS credentials; 4 an AWS call failed; 130 interrupted.
"""

from __future__ import annotations

import cli_launch

cli_launch.begin("prostudio-cost", ("runtime",))

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterable, Mapping  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from runtime.common.cli_input import aws_region  # noqa: E402
from runtime.common.errors import ExitCode, UsageError  # noqa: E402

cli_launch.ready()

ROOT = Path(__file__).resolve().parents[1]
PRICES_DIR = ROOT / "scripts" / "prices"
BASELINE = ROOT / "infra" / "cost_baseline.json"
STACKS = ("ZeroCostStack", "ProdStack")
PHASES = ("1", "2", "3")
HOURS = 730
# Usage-based items, priced at these volumes a month.
ASSUMPTIONS: dict[str, float] = {
    "alb_lcu": 1.0,  # average load balancer capacity units in use
    "log_gb": 1.0,  # GB ingested per log group
    "bucket_gb": 1.0,  # GB stored per S3 bucket (access logs)
    "dns_million_queries": 1.0,  # per non-alias record
    "cache_gb": 1.0,  # data per cache group, for snapshots beyond the free one
}
FREE_PLAN_CREDITS_USD = 200.0  # $100 at sign-up plus up to $100 for activities
FREE_PLAN_MONTHS = 6
FREE_PLAN_EC2_TYPES = {"t3.micro", "t3.small", "t4g.micro", "t4g.small"}
LEGACY_FREE_EC2_TYPES = {"t2.micro", "t3.micro"}
LEGACY_FREE_CACHE_TYPES = {"cache.t2.micro", "cache.t3.micro"}
EXIT_USAGE = 2
# The Price List API names Fargate usage types with a per-region prefix.
USAGE_PREFIX = {
    "us-east-1": "USE1-",
    "us-east-2": "USE2-",
    "us-west-2": "USW2-",
    "eu-west-1": "EU-",
}


# Resources billed a flat monthly rate: (what, price key, free-tier allowance drawn).
FIXED: dict[str, tuple[str, str, dict[str, float]]] = {
    "AWS::SecretsManager::Secret": ("secret", "secret", {}),
    "AWS::KMS::Key": ("customer-managed key", "kms.key", {}),
    "AWS::CloudWatch::Dashboard": ("dashboard", "cloudwatch.dashboard", {"dashboards": 1}),
    "AWS::Logs::MetricFilter": ("custom metric", "cloudwatch.metric", {"metrics": 1}),
}


# Route53 endpoint checks every 30 s, or every 10 s as a paid option.
FAST_INTERVAL_SECONDS = 10


class CostError(Exception):
    """Something the operator must fix; the message says what."""

    exit_code = ExitCode.USAGE


class NoCredentials(CostError):
    exit_code = ExitCode.NO_CREDENTIALS


class AwsCallFailed(CostError):
    exit_code = ExitCode.AWS_ERROR


@dataclass
class Item:
    stack: str
    logical_id: str
    resource_type: str
    what: str
    monthly_usd: float
    usage: bool = False
    # Amounts the legacy free tier draws from: ec2_hours, ebs_gb, ipv4_hours, cache_hours, ...
    free: dict[str, float] = field(default_factory=dict)


def load_prices(region: str) -> dict[str, Any]:
    path = PRICES_DIR / f"{region}.json"
    if not path.is_file():
        raise CostError(
            f"no price table for {region} at {path.relative_to(ROOT)}; "
            "run scripts/cost.py --refresh-prices --region " + region
        )
    table = _read_json(path)
    if not isinstance(table, dict) or not isinstance(table.get("prices"), dict):
        raise CostError(f"{path} is not a price table (an object with a prices object)")
    return table


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise CostError(f"{path}: {error.strerror or error}") from None
    except ValueError:
        raise CostError(f"{path} is not UTF-8 JSON") from None


class Pricer:
    """Turns one template's resources into priced items."""

    def __init__(self, prices: Mapping[str, Any]) -> None:
        self._prices = prices["prices"]

    def rate(self, key: str) -> float:
        if key not in self._prices:
            raise CostError(f"the price table has no {key!r}; add it or run --refresh-prices")
        return float(self._prices[key]["usd"])

    def items(self, stack: str, template: Mapping[str, Any]) -> list[Item]:
        resources: Mapping[str, Any] = template.get("Resources", {})
        associated = {
            _ref(r["Properties"].get("InstanceId"))
            for r in resources.values()
            if r["Type"] == "AWS::EC2::EIPAssociation"
        }
        items: list[Item] = []
        for logical_id, resource in resources.items():
            priced = (
                self._health_check(resource["Properties"].get("HealthCheckConfig", {}))
                if resource["Type"] == "AWS::Route53::HealthCheck"
                else self._price(logical_id, resource, resources, associated)
            )
            for what, usd, usage, free in priced:
                items.append(Item(stack, logical_id, resource["Type"], what, usd, usage, free))
        return items

    def _price(
        self,
        logical_id: str,
        resource: Mapping[str, Any],
        resources: Mapping[str, Any],
        eip: set[str | None],
    ) -> Iterable[tuple[str, float, bool, dict[str, float]]]:
        kind, props = resource["Type"], resource.get("Properties", {})
        a = ASSUMPTIONS
        if kind in FIXED:
            what, key, free = FIXED[kind]
            yield what, self.rate(key), False, dict(free)
        elif kind == "AWS::EC2::Instance":
            yield from self._instance(logical_id, props, eip)
        elif kind == "AWS::EC2::EIP":
            yield (
                "Elastic IP (public IPv4)",
                self.rate("ipv4") * HOURS,
                False,
                {"ipv4_hours": HOURS},
            )
        elif kind == "AWS::EC2::NatGateway":
            yield "NAT gateway (data extra)", self.rate("nat.hour") * HOURS, False, {}
        elif kind == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
            azs = len(props.get("SubnetIds", [])) or 1
            yield (
                f"interface endpoint, {azs} AZ",
                azs * self.rate("vpce.interface") * HOURS,
                False,
                {},
            )
        elif kind == "AWS::ElasticLoadBalancingV2::LoadBalancer":
            yield from self._alb(props)
        elif kind in ("AWS::ElastiCache::ReplicationGroup", "AWS::ElastiCache::CacheCluster"):
            yield from self._cache(logical_id, kind, props)
        elif kind == "AWS::ECS::Service":
            yield from self._fargate(logical_id, props, resources)
        elif kind == "AWS::CloudWatch::Alarm":
            metrics = sum(1 for m in props.get("Metrics", []) if "MetricStat" in m) or 1
            yield (
                f"alarm, {metrics} metric",
                metrics * self.rate("cloudwatch.alarm"),
                False,
                {"alarms": metrics},
            )
        elif kind == "AWS::Logs::LogGroup":
            gb = a["log_gb"]
            yield f"{gb:g} GB ingested", gb * self.rate("logs.ingest"), True, {"log_gb": gb}
        elif kind == "AWS::Route53::RecordSet" and "AliasTarget" not in props:
            q = a["dns_million_queries"]
            yield f"{q:g} M queries", q * self.rate("route53.queries"), True, {}
        elif kind == "AWS::S3::Bucket":
            gb = a["bucket_gb"]
            yield f"{gb:g} GB stored", gb * self.rate("s3.storage"), True, {}

    def _instance(
        self, logical_id: str, props: Mapping[str, Any], eip: set[str | None]
    ) -> Iterable[tuple[str, float, bool, dict[str, float]]]:
        itype = _literal(props.get("InstanceType"), "InstanceType", logical_id)
        yield itype, self.rate(f"ec2.{itype}") * HOURS, False, {f"ec2_hours:{itype}": HOURS}
        for mapping in props.get("BlockDeviceMappings", []):
            ebs = mapping.get("Ebs", {})
            size, vtype = int(ebs.get("VolumeSize", 8)), ebs.get("VolumeType", "gp3")
            yield f"{size} GB {vtype}", size * self.rate(f"ebs.{vtype}"), False, {"ebs_gb": size}
        public = any(n.get("AssociatePublicIpAddress") for n in props.get("NetworkInterfaces", []))
        if public and logical_id not in eip:
            yield "public IPv4", self.rate("ipv4") * HOURS, False, {"ipv4_hours": HOURS}

    def _health_check(
        self, config: Mapping[str, Any]
    ) -> Iterable[tuple[str, float, bool, dict[str, float]]]:
        """Every check at the AWS-endpoint rate (alarm-following and calculated checks too),
        plus each optional feature an endpoint check uses."""
        check_type = str(config.get("Type", ""))
        yield f"health check ({check_type})", self.rate("route53.health_check"), False, {}
        features = {
            "HTTPS": check_type.startswith("HTTPS"),
            "string matching": check_type.endswith("STR_MATCH"),
            "fast interval": config.get("RequestInterval") == FAST_INTERVAL_SECONDS,
            "latency graphs": bool(config.get("MeasureLatency")),
        }
        for feature in (name for name, used in features.items() if used):
            yield feature, self.rate("route53.health_check.feature"), False, {}

    def _alb(self, props: Mapping[str, Any]) -> Iterable[tuple[str, float, bool, dict[str, float]]]:
        if props.get("Type", "application") != "application":
            return
        yield "ALB", self.rate("alb.hour") * HOURS, False, {"alb_hours": HOURS}
        lcu = ASSUMPTIONS["alb_lcu"]
        yield f"{lcu:g} LCU", lcu * self.rate("alb.lcu") * HOURS, True, {"alb_lcu": lcu}
        if props.get("Scheme", "internet-facing") == "internet-facing":
            ips = len(props.get("Subnets", props.get("SubnetMappings", [])))
            yield f"{ips} public IPv4", ips * self.rate("ipv4") * HOURS, False, {}

    def _cache(
        self, logical_id: str, kind: str, props: Mapping[str, Any]
    ) -> Iterable[tuple[str, float, bool, dict[str, float]]]:
        node = _literal(props.get("CacheNodeType"), "CacheNodeType", logical_id)
        engine = str(props.get("Engine", "redis")).lower()
        if kind == "AWS::ElastiCache::CacheCluster":
            nodes = int(props.get("NumCacheNodes", 1))
        elif "NumNodeGroups" in props:
            nodes = int(props["NumNodeGroups"]) * (1 + int(props.get("ReplicasPerNodeGroup", 0)))
        else:
            nodes = int(props.get("NumCacheClusters", 1))
        hourly = self.rate(f"elasticache.{engine}.{node}")
        free: dict[str, float] = (
            {"cache_hours": nodes * HOURS} if node in LEGACY_FREE_CACHE_TYPES else {}
        )
        yield f"{nodes} x {node} ({engine})", nodes * hourly * HOURS, False, free
        extra = max(int(props.get("SnapshotRetentionLimit", 0)) - 1, 0)
        if extra:
            gb = ASSUMPTIONS["cache_gb"]
            usd = extra * gb * self.rate("elasticache.backup")
            yield f"{extra} snapshots x {gb:g} GB beyond the free one", usd, True, {}

    def _fargate(
        self, logical_id: str, props: Mapping[str, Any], resources: Mapping[str, Any]
    ) -> Iterable[tuple[str, float, bool, dict[str, float]]]:
        if props.get("LaunchType", "FARGATE") != "FARGATE":
            return
        task = resources.get(_ref(props.get("TaskDefinition")) or "", {}).get("Properties", {})
        vcpu = int(_literal(task.get("Cpu"), "Cpu", logical_id)) / 1024
        gb = int(_literal(task.get("Memory"), "Memory", logical_id)) / 1024
        arch = task.get("RuntimePlatform", {}).get("CpuArchitecture", "X86_64")
        family = "arm" if arch == "ARM64" else "x86"
        count, basis = props.get("DesiredCount"), "desired"
        if count is None:
            count, basis = _min_capacity(logical_id, resources), "autoscaling minimum"
        per_task = (
            self.rate(f"fargate.{family}.vcpu") * vcpu + self.rate(f"fargate.{family}.gb") * gb
        )
        what = f"{count} tasks ({basis}) x {vcpu:g} vCPU / {gb:g} GB {family}"
        yield what, int(count) * per_task * HOURS, False, {}


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, Mapping) else None


def _literal(value: Any, name: str, logical_id: str) -> str:
    if value is None or isinstance(value, Mapping):
        raise CostError(f"{logical_id}'s {name} is not a literal in the template; cannot price it")
    return str(value)


def _min_capacity(service_id: str, resources: Mapping[str, Any]) -> int:
    for resource in resources.values():
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget":
            text = json.dumps(resource["Properties"].get("ResourceId"))
            if service_id in text:
                return int(resource["Properties"]["MinCapacity"])
    return 1


def legacy_free_tier(items: Iterable[Item], pricer: Pricer) -> float:
    """What the legacy 12-month free tier (and the always-free allowances) take off a month."""
    used: dict[str, float] = {}
    for item in items:
        for key, amount in item.free.items():
            used[key] = used.get(key, 0) + amount
    ec2_hours = {k.split(":", 1)[1]: v for k, v in used.items() if k.startswith("ec2_hours:")}
    left, credit = 750.0, 0.0
    for itype in sorted(ec2_hours, key=lambda t: -pricer.rate(f"ec2.{t}")):
        if itype in LEGACY_FREE_EC2_TYPES:
            hours = min(ec2_hours[itype], left)
            credit, left = credit + hours * pricer.rate(f"ec2.{itype}"), left - hours
    credit += min(used.get("ebs_gb", 0), 30) * pricer.rate("ebs.gp3")
    credit += min(used.get("ipv4_hours", 0), 750) * pricer.rate("ipv4")
    credit += min(used.get("cache_hours", 0), 750) * pricer.rate("elasticache.redis.cache.t3.micro")
    credit += min(used.get("alb_hours", 0), 750) * pricer.rate("alb.hour")
    credit += min(used.get("alb_lcu", 0), 15) * pricer.rate("alb.lcu") * HOURS
    credit += min(used.get("alarms", 0), 10) * pricer.rate("cloudwatch.alarm")
    credit += min(used.get("dashboards", 0), 3) * pricer.rate("cloudwatch.dashboard")
    credit += min(used.get("metrics", 0), 10) * pricer.rate("cloudwatch.metric")
    credit += min(used.get("log_gb", 0), 5) * pricer.rate("logs.ingest")
    return credit


def summarize(items: list[Item], pricer: Pricer) -> dict[str, Any]:
    total = sum(i.monthly_usd for i in items)
    free = legacy_free_tier(items, pricer)
    refused = sorted(
        {k.split(":", 1)[1] for i in items for k in i.free if k.startswith("ec2_hours:")}
        - FREE_PLAN_EC2_TYPES
    )
    return {
        "monthly_usd": round(total, 2),
        "stacks": {s: round(sum(i.monthly_usd for i in items if i.stack == s), 2) for s in STACKS},
        "usage_assumed_usd": round(sum(i.monthly_usd for i in items if i.usage), 2),
        "legacy_free_tier_monthly_usd": round(max(total - free, 0), 2),
        "free_plan_months_covered": round(min(FREE_PLAN_CREDITS_USD / total, FREE_PLAN_MONTHS), 1)
        if total
        else FREE_PLAN_MONTHS,
        "free_plan_refused_instance_types": refused,
    }


def price_assembly(directory: Path, pricer: Pricer) -> list[Item]:
    items: list[Item] = []
    for stack in STACKS:
        path = directory / f"{stack}.template.json"
        if not path.is_file():
            raise CostError(f"{path} is missing; synthesize into {directory} first")
        template = _read_json(path)
        try:
            items.extend(pricer.items(stack, template))
        except CostError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise CostError(
                f"{path} is not a template cost.py can read ({type(error).__name__}: {error})"
            ) from None
    return items


def print_items(title: str, items: list[Item], summary: Mapping[str, Any]) -> None:
    print(f"\n== {title}: ${summary['monthly_usd']:.2f}/month on-demand")
    for stack in STACKS:
        rows = sorted((i for i in items if i.stack == stack), key=lambda i: -i.monthly_usd)
        print(f"  {stack}: ${summary['stacks'][stack]:.2f}")
        for i in rows:
            mark = " (usage, assumed)" if i.usage else ""
            print(
                f"    {i.monthly_usd:9.2f}  {i.logical_id:<40} {i.resource_type:<42} {i.what}{mark}"
            )
    print(
        f"  legacy 12-month free tier: ${summary['legacy_free_tier_monthly_usd']:.2f}/month;"
        f" Free Plan credits (${FREE_PLAN_CREDITS_USD:.0f}) last "
        f"{summary['free_plan_months_covered']:g} of {FREE_PLAN_MONTHS} months"
    )
    if summary["free_plan_refused_instance_types"]:
        refused = ", ".join(summary["free_plan_refused_instance_types"])
        print(f"  note: a Free Plan account refuses {refused} (not Free-Plan eligible)")


def synth_phase(phase: str, outdir: Path, extra: list[str]) -> None:
    command = [str(ROOT / "node_modules/.bin/cdk"), "synth", "--no-notices", "--quiet"]
    command += ["--no-version-reporting", "-o", str(outdir), "-c", f"phase={phase}", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise CostError(f"synth of phase {phase} failed: {done.stderr.strip().splitlines()[-1:]}")


def refresh_prices(region: str, client: Any) -> dict[str, Any]:
    """The price table with every EC2, ElastiCache and Fargate rate read from the Price List API;
    other rates keep their recorded source. ``client`` is a boto3 ``pricing`` client."""
    table = load_prices(region)
    for key in table["prices"]:
        query = _price_query(key, region)
        if query is None:
            continue
        service, filters = query
        pages = client.get_paginator("get_products").paginate(
            ServiceCode=service,
            Filters=[{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters.items()],
        )
        usd = _on_demand_usd(product for page in pages for product in page["PriceList"])
        if usd is None:
            raise CostError(f"the Price List API has no on-demand price for {key} in {region}")
        table["prices"][key] = {**table["prices"][key], "usd": usd, "source": "AWS Price List API"}
    table["date"] = datetime.now(UTC).date().isoformat()
    table["source"] = "AWS Price List API (EC2, ElastiCache, Fargate); the rest as recorded"
    return table


def _price_query(key: str, region: str) -> tuple[str, dict[str, str]] | None:
    base = {"regionCode": region}
    if key.startswith("ec2.") and key.count(".") == 2:
        return "AmazonEC2", {
            **base,
            "instanceType": key[4:],
            "operatingSystem": "Linux",
            "tenancy": "Shared",
            "preInstalledSw": "NA",
            "capacitystatus": "Used",
        }
    if key.startswith("elasticache.") and key.count(".") == 4:
        engine, node = key.split(".", 2)[1:]
        engines = {"redis": "Redis", "valkey": "Valkey"}
        return "AmazonElastiCache", {**base, "instanceType": node, "cacheEngine": engines[engine]}
    if key.startswith("fargate."):
        if region not in USAGE_PREFIX:
            raise CostError(
                f"no Fargate usage-type prefix known for {region}; add it to USAGE_PREFIX"
            )
        _, family, unit = key.split(".")
        arch = "-ARM" if family == "arm" else ""
        usage = {"vcpu": "vCPU-Hours:perCPU", "gb": "GB-Hours"}[unit]
        return "AmazonECS", {**base, "usagetype": f"{USAGE_PREFIX[region]}Fargate{arch}-{usage}"}
    return None


def _on_demand_usd(products: Iterable[str]) -> float | None:
    for raw in products:
        product = json.loads(raw)
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term["priceDimensions"].values():
                usd = float(dimension["pricePerUnit"]["USD"])
                if usd > 0:
                    return usd
    return None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="cost.py", description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="us-east-1", help="price table region")
    parser.add_argument("--assembly", type=Path, help="price this synthesized cdk.out")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("FROM", "TO"))
    parser.add_argument("--refresh-prices", action="store_true", help="needs AWS credentials")
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help=f"also write the per-stack figures the budgets use to {BASELINE.relative_to(ROOT)}",
    )
    parser.add_argument("-c", "--context", action="append", default=[], help="extra -c flags")
    args = parser.parse_args(argv)
    try:
        aws_region("--region", args.region)
    except UsageError as error:
        parser.error(str(error))
    return args


def refresh(region: str) -> dict[str, Any]:
    """--refresh-prices: the new table, written; AWS failures as one-line errors."""
    # boto3 is needed only here, so pricing a template works without it.
    boto3 = importlib.import_module("boto3")
    errors = importlib.import_module("botocore.exceptions")
    try:
        table = refresh_prices(region, boto3.client("pricing", region_name="us-east-1"))
    except (errors.NoCredentialsError, errors.PartialCredentialsError) as error:
        raise NoCredentials(
            f"--refresh-prices needs AWS credentials ({error}); set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except (errors.ClientError, errors.BotoCoreError) as error:
        raise AwsCallFailed(f"the AWS Price List API call failed: {error}") from None
    (PRICES_DIR / f"{region}.json").write_text(json.dumps(table, indent=2) + "\n")
    return table


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.refresh_prices:
        table = refresh(args.region)
        return {"region": args.region, "prices": {"date": table["date"]}}
    prices = load_prices(args.region)
    pricer = Pricer(prices)
    result: dict[str, Any] = {
        "region": args.region,
        "prices": {"date": prices["date"], "source": prices["source"]},
        "assumptions": ASSUMPTIONS,
    }
    if args.compare:
        before, after = (price_assembly(d, pricer) for d in args.compare)
        old, new = summarize(before, pricer), summarize(after, pricer)
        delta = round(new["monthly_usd"] - old["monthly_usd"], 2)
        print(f"cost: ${old['monthly_usd']:.2f} -> ${new['monthly_usd']:.2f}/month ({delta:+.2f})")
        for stack in STACKS:
            change = new["stacks"][stack] - old["stacks"][stack]
            was, now = old["stacks"][stack], new["stacks"][stack]
            print(f"  {stack}: ${was:.2f} -> ${now:.2f} ({change:+.2f})")
        return {**result, "from": old, "to": new, "delta_usd": delta}
    if args.assembly:
        items = price_assembly(args.assembly, pricer)
        summary = summarize(items, pricer)
        print_items(str(args.assembly), items, summary)
        return {**result, "assembly": summary}
    extra = [arg for flag in args.context for arg in ("-c", flag)]
    with tempfile.TemporaryDirectory(prefix="cost-") as scratch:
        outs = {phase: Path(scratch) / f"phase{phase}" for phase in PHASES}
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda p: synth_phase(p, outs[p], extra), PHASES))
        phases = {}
        for phase in PHASES:
            items = price_assembly(outs[phase], pricer)
            phases[phase] = summarize(items, pricer)
            print_items(f"phase {phase}", items, phases[phase])
    if args.write_baseline:
        figures = {phase: summary["stacks"] for phase, summary in phases.items()}
        baseline = {"prices_date": prices["date"], "phases": figures}
        BASELINE.write_text(json.dumps(baseline, indent=2) + "\n")
    return {**result, "phases": phases}


def main(argv: list[str] | None = None) -> int:
    try:
        result = run(parse_args(argv))
    except CostError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
