"""The docs say only what the code does: every make target, flag, path, command, port and
figure named in README.md and docs/ is checked here (see docs_claims.py for how), and each
check is shown refusing a broken claim of its kind."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import docs_claims as claims
import pytest
from synth_support import ROOT, synthesize

from infra.config import DEFAULTS, is_cdk_key

PAGES = claims.load_pages()
PAGE_IDS = [page.path for page in PAGES]


def _cost_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cost", ROOT / "scripts" / "cost.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("cost", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cost_json() -> dict[str, Any]:
    """`make cost`'s JSON, computed once per session the way scripts/cost.py computes it:
    each phase synthesized with the default flags and priced by its Pricer."""
    cost = _cost_module()
    prices = cost.load_prices("us-east-1")
    pricer = cost.Pricer(prices)
    phases = {}
    for phase in cost.PHASES:
        synthesis = synthesize(phase=phase)
        items = [
            item for stack in cost.STACKS for item in pricer.items(stack, synthesis.template(stack))
        ]
        phases[phase] = cost.summarize(items, pricer)
    return {"region": "us-east-1", "prices": {"date": prices["date"]}, "phases": phases}


@pytest.fixture(scope="session")
def help_runner() -> claims.HelpRunner:
    return claims.HelpRunner()


@pytest.fixture(scope="session")
def figure_facts(cost_json: dict[str, Any]) -> claims.FigureFacts:
    return claims.FigureFacts(cost=cost_json, prices=claims.load_prices())


def _page(text: str, path: str = "docs/broken.md") -> claims.Page:
    return claims.parse(path, text)


# ------------------------------------------------------------------------- the real pages


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_make_targets_and_variables_exist(page: claims.Page) -> None:
    problems = claims.check_make(page, claims.make_facts())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_flags_are_the_config_modules(page: claims.Page) -> None:
    problems = claims.check_flags(page, DEFAULTS, is_cdk_key)
    assert not problems, "\n".join(problems)


def test_every_flag_is_documented_in_the_configuration_page() -> None:
    (configuration,) = [page for page in PAGES if page.path == "docs/configuration.md"]
    assert set(DEFAULTS) - claims.documented_flags(configuration) == set()


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_paths_and_links_exist(page: claims.Page) -> None:
    problems = claims.check_paths(page)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_commands_run_as_written(page: claims.Page, help_runner: claims.HelpRunner) -> None:
    problems = claims.check_commands(page, help_runner)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_ports_are_the_codes(page: claims.Page) -> None:
    problems = claims.check_ports(page, claims.port_facts())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_figures_equal_make_cost_and_the_price_table(
    page: claims.Page, figure_facts: claims.FigureFacts
) -> None:
    problems = claims.check_figures(page, figure_facts)
    assert not problems, "\n".join(problems)


def test_the_runbook_holds_the_rollout_between_its_markers() -> None:
    text = (ROOT / "docs" / "runbook.md").read_text()
    assert text.count("<!-- rollout:begin -->") == 1
    assert text.count("<!-- rollout:end -->") == 1
    assert text.index("<!-- rollout:begin -->") < text.index("<!-- rollout:end -->")


# ------------------------------------------------------------- each check refuses a broken claim


def test_a_missing_make_target_or_variable_is_refused() -> None:
    page = _page("Run `make sinth`, then `make diff FRM=x`.\n")
    problems = claims.check_make(page, claims.make_facts())
    assert problems == [
        "docs/broken.md:1: make has no target 'sinth'",
        "docs/broken.md:1: make variable FRM is not read",
    ]


def test_an_unknown_flag_or_a_wrong_default_is_refused() -> None:
    text = (
        'Deploy with `-c migrateData=true` or set `"Phase": 3`.\n\n'
        "| flag | default | meaning |\n|---|---|---|\n| `phase` | `2` | the phase |\n"
    )
    problems = claims.check_flags(_page(text), DEFAULTS, is_cdk_key)
    assert problems == [
        "docs/broken.md:1: -c migrateData= is not a flag",
        'docs/broken.md:1: "Phase" is not a flag',
        "docs/broken.md:5: default of phase is '1', the table says '2'",
    ]


def test_a_missing_path_or_anchor_is_refused(tmp_path: Path) -> None:
    page = claims.parse(
        "README.md",
        "See `scripts/migrate.py` and [the runbook](docs/runbook.md#no-such-step) and"
        " [gone](docs/gone.md).\n",
    )
    assert claims.check_paths(page) == [
        "README.md:1: scripts/migrate.py does not exist",
        "README.md:1: no heading #no-such-step in docs/runbook.md",
        "README.md:1: link to missing docs/gone.md",
    ]


def test_a_command_that_fails_as_written_is_refused(help_runner: claims.HelpRunner) -> None:
    text = (
        "```bash\n"
        "scripts/bench_copy.py status --zone-id Z1 --name api.example.com\n"
        "shift-traffic shift --to 0 --step 100\n"
        "migrate-redis --source redis://a --target rediss://b --resumed\n"
        "```\n"
    )
    problems = claims.check_commands(_page(text), help_runner)
    assert problems[0].startswith("docs/broken.md:2: `scripts/bench_copy.py --help` fails")
    assert problems[1:] == [
        "docs/broken.md:3: `shift-traffic shift` needs --zone-id",
        "docs/broken.md:3: `shift-traffic shift` needs --name",
        "docs/broken.md:4: migrate-redis has no option --resumed",
    ]


def test_a_wrong_port_is_refused() -> None:
    text = (
        "`migrate-redis --target rediss://master.prod.cache.amazonaws.com:6379/0`\n"
        "The box's nginx listens on port 8081.\n"
    )
    problems = claims.check_ports(_page(text), claims.port_facts())
    assert sorted(problems) == [
        "docs/broken.md:1: rediss://master.prod.cache.amazonaws.com:6379: TLS Redis"
        " (ElastiCache) listens on 6380",
        "docs/broken.md:2: port 8081 is none of the ports the code uses",
    ]


def test_a_wrong_or_unchecked_figure_is_refused(figure_facts: claims.FigureFacts) -> None:
    phase_one = figure_facts.lookup("phases.1.monthly_usd")
    text = (
        "Phase 1 costs $14<!-- $ cost('phases.1.monthly_usd') --> a month.\n"
        f"Phase 1 costs ${phase_one:.2f}<!-- $ cost('phases.1.monthly_usd') --> a month.\n"
        "Three nodes cost $480<!-- $ 3*HOURS*price('elasticache.valkey.cache.r7g.large') -->.\n"
        "The runbook says $875.\n"
    )
    problems = claims.check_figures(_page(text), figure_facts)
    assert problems == [
        f"docs/broken.md:1: $14 but cost('phases.1.monthly_usd') = {phase_one:.0f}",
        "docs/broken.md:3: $480 but 3*HOURS*price('elasticache.valkey.cache.r7g.large') = 384",
        "docs/broken.md:4: $875 has no <!-- $ expression --> to check it",
    ]
