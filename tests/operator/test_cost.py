"""make cost: prices from the synthesized templates, the free-tier views and the price refresh."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from synth_support import ROOT, synthesize


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cost = load_script("cost")
PRICER = cost.Pricer(cost.load_prices("us-east-1"))
# An independent estimate of each phase's fixed-cost resources at list prices (us-east-1),
# made from templates with a t2.micro box and Redis OSS caches.
INDEPENDENT = {"1": 13.16, "2": 68.29, "3": 873.0}
ESTIMATED_FLAGS = {"instance_type": "t2.micro", "cache_engine": "redis"}
# Phase 3's estimate priced three x86 tasks ($216); the service now runs on ARM64 and, with
# no desired count in the template, starts at the autoscaling minimum of two tasks: two
# 2 vCPU / 4 GB ARM tasks at the list price in shared prices ($0.03238/vCPU-h, $0.00356/GB-h).
ESTIMATED_TASKS_USD = 216.0
TEMPLATE_TASKS_USD = 2 * (2 * 0.03238 + 4 * 0.00356) * 730
# Phase 1's estimate also predates the stack's log-encryption key ($1.00) and the box's four
# alarms ($0.10 each), which it now carries.
EXPECTED = {
    "1": INDEPENDENT["1"] + 1.00 + 4 * 0.10,
    "2": INDEPENDENT["2"],
    "3": INDEPENDENT["3"] - ESTIMATED_TASKS_USD + TEMPLATE_TASKS_USD,
}


def estimated(phase: str) -> Any:
    return synthesize(phase=phase, **ESTIMATED_FLAGS)


def write_assembly(directory: Path, phase: str) -> Path:
    synthesis = synthesize(phase=phase)
    directory.mkdir()
    for stack in cost.STACKS:
        (directory / f"{stack}.template.json").write_text(json.dumps(synthesis.template(stack)))
    return directory


@pytest.mark.parametrize("phase", ["1", "2", "3"])
def test_each_phase_is_within_ten_percent_of_the_independent_estimate(phase: str) -> None:
    items = [
        item
        for stack in cost.STACKS
        for item in PRICER.items(stack, estimated(phase).template(stack))
    ]
    fixed = sum(item.monthly_usd for item in items if not item.usage)
    assert fixed == pytest.approx(EXPECTED[phase], rel=0.10)
    usage = sum(item.monthly_usd for item in items if item.usage)
    assert cost.summarize(items, PRICER)["monthly_usd"] == pytest.approx(fixed + usage, abs=0.01)


def test_prices_what_the_template_says_node_type_engine_and_counts() -> None:
    template = {
        "Resources": {
            "Cache": {
                "Type": "AWS::ElastiCache::ReplicationGroup",
                "Properties": {
                    "CacheNodeType": "cache.r7g.large",
                    "Engine": "valkey",
                    "NumCacheClusters": 3,
                },
            },
            "Box": {
                "Type": "AWS::EC2::Instance",
                "Properties": {"InstanceType": "t3.micro"},
            },
        }
    }
    items = {i.logical_id: i for i in PRICER.items("ProdStack", template)}
    assert items["Cache"].monthly_usd == pytest.approx(3 * 0.1752 * 730)
    assert items["Box"].monthly_usd == pytest.approx(0.0104 * 730)


def test_a_parameterised_instance_type_is_refused_with_one_line() -> None:
    template = {
        "Resources": {
            "Box": {"Type": "AWS::EC2::Instance", "Properties": {"InstanceType": {"Ref": "P"}}}
        }
    }
    with pytest.raises(cost.CostError, match="Box's InstanceType is not a literal"):
        PRICER.items("ZeroCostStack", template)


def test_legacy_free_tier_covers_one_micro_box_but_not_the_second() -> None:
    items = [i for s in cost.STACKS for i in PRICER.items(s, estimated("2").template(s))]
    summary = cost.summarize(items, PRICER)
    # 750 h of t2.micro cover one box; the second box, ALB IPv4s and the secrets still bill.
    assert summary["legacy_free_tier_monthly_usd"] < summary["monthly_usd"] - 8.47 - 12.41
    assert summary["legacy_free_tier_monthly_usd"] > 8.47
    assert summary["free_plan_refused_instance_types"] == ["t2.micro"]


def test_compare_prints_the_delta_and_ends_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = write_assembly(tmp_path / "from", "1")
    after = write_assembly(tmp_path / "to", "2")
    assert cost.main(["--compare", str(before), str(after)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["delta_usd"] == pytest.approx(
        result["to"]["monthly_usd"] - result["from"]["monthly_usd"], abs=0.01
    )
    assert result["delta_usd"] > 40
    assert out[0].startswith("cost: $")


def test_a_missing_assembly_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["--assembly", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "synthesize" in err and err.count("\n") == 1


def product(usd: str) -> str:
    dimension = {"pricePerUnit": {"USD": usd}, "unit": "Hrs"}
    return json.dumps({"terms": {"OnDemand": {"T": {"priceDimensions": {"D": dimension}}}}})


def test_refresh_prices_reads_the_price_list_api() -> None:
    client = boto3.client("pricing", region_name="us-east-1")
    stubber = Stubber(client)
    table = cost.load_prices("us-east-1")
    queried = [key for key in table["prices"] if cost._price_query(key, "us-east-1")]
    for key in queried:
        service, filters = cost._price_query(key, "us-east-1")
        expected: dict[str, Any] = {
            "ServiceCode": service,
            "Filters": [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters.items()],
        }
        stubber.add_response("get_products", {"PriceList": [product("0.5")]}, expected)
    with stubber:
        refreshed = cost.refresh_prices("us-east-1", client)
    stubber.assert_no_pending_responses()
    assert {"ec2.t2.micro", "elasticache.redis.cache.r7g.large", "fargate.x86.vcpu"} <= set(queried)
    for key in queried:
        assert refreshed["prices"][key]["usd"] == 0.5
        assert refreshed["prices"][key]["source"] == "AWS Price List API"
    assert refreshed["prices"]["secret"] == table["prices"]["secret"]


def test_the_default_valkey_caches_cost_a_fifth_less_than_redis_oss() -> None:
    def cache_cost(synthesis: Any) -> float:
        return sum(
            item.monthly_usd
            for stack in cost.STACKS
            for item in PRICER.items(stack, synthesis.template(stack))
            if item.resource_type == "AWS::ElastiCache::ReplicationGroup"
        )

    valkey, redis_oss = cache_cost(synthesize(phase="3")), cache_cost(estimated("3"))
    assert valkey == pytest.approx(0.8 * redis_oss, rel=0.02)


def test_the_records_health_checks_are_priced_with_their_https_probe() -> None:
    items = [
        item
        for item in PRICER.items("ProdStack", synthesize(phase="3").template("ProdStack"))
        if item.resource_type == "AWS::Route53::HealthCheck"
    ]
    # Four alarm-following checks, the HTTPS probe and the calculated check at $0.50 each,
    # and the probe's HTTPS option at $1.00
    whats = sorted(item.what for item in items)
    assert whats == sorted(
        ["health check (CLOUDWATCH_METRIC)"] * 4
        + ["health check (HTTPS)", "health check (CALCULATED)", "HTTPS"]
    )
    assert sum(item.monthly_usd for item in items) == pytest.approx(4.00)
