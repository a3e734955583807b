"""The pull-request workflow's script: template diff and cost delta between two assemblies."""

from __future__ import annotations

import subprocess

from synth_support import ROOT, synthesize


def test_the_summary_shows_each_stacks_changes_and_the_cost_delta() -> None:
    before, after = synthesize(phase="2").outdir, synthesize(phase="3").outdir
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "assembly_diff.sh"), "Phase 3", str(before), str(after)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    summary = done.stdout
    assert summary.startswith("## Phase 3\n")
    assert "### ZeroCostStack" in summary and "### ProdStack" in summary
    assert "AWS::ElasticLoadBalancingV2::LoadBalancer" in summary
    cost_line = next(line for line in summary.splitlines() if line.startswith("cost: $"))
    assert "-> $" in cost_line and "(+" in cost_line
    assert not any(line.startswith('{"region"') for line in summary.splitlines())
    tables = [line for line in summary.splitlines() if line[:1] in "┌│├└"]
    assert tables, "production's IAM and security group changes are drawn as tables"
    assert max(len(line) for line in tables) <= 100
