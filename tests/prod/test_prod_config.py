"""Each bad production flag is refused with one line naming the flag and what is allowed."""

from __future__ import annotations

import pytest
from synth_support import context_for

from infra.config import ConfigError, load_settings

BAD = [
    ({"ecs_task_count": "3"}, "ecs_task_count is gone: ecs_min_tasks and ecs_max_tasks bound"),
    ({"ecs_min_tasks": "1"}, "ecs_min_tasks=1 is out of range; allowed: 2..20"),
    ({"ecs_max_tasks": "30"}, "ecs_max_tasks=30 is out of range; allowed: 2..20"),
    ({"ecs_min_tasks": "8", "ecs_max_tasks": "4"}, "ecs_min_tasks=8 is above ecs_max_tasks=4"),
    ({"redis_node_count": "2"}, "redis_node_count=2 is not allowed; use one of 3"),
    ({"redis_node_count": "5"}, "redis_node_count=5 is not allowed; use one of 3"),
    ({"redis_node_type": "r7g.large"}, "redis_node_type='r7g.large' is not an ElastiCache"),
    ({"redis_node_type": "db.r7g.large"}, "redis_node_type='db.r7g.large' is not an ElastiCache"),
    ({"domain_name": "api..example.com"}, "domain_name='api..example.com' is not a lower-case"),
    ({"domain_name": "-api.example.com"}, "domain_name='-api.example.com' is not a lower-case"),
    ({"domain_name": "api_x.example.com"}, "domain_name='api_x.example.com' is not a lower-case"),
    ({"traffic_weight": "101"}, "traffic_weight=101 is out of range; allowed: 0..100"),
    ({"traffic_weight": "-1"}, "traffic_weight=-1 is out of range; allowed: 0..100"),
    ({"alarm_email": "ops-at-example"}, "alarm_email='ops-at-example' is not an e-mail address"),
    ({"migrate_data": "maybe"}, "migrate_data='maybe' is not a boolean"),
]


@pytest.mark.parametrize(("flags", "message"), BAD, ids=[message for _, message in BAD])
def test_bad_production_flag_is_one_clear_line(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(context_for({"phase": "3", **flags}))
    text = str(error.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_defaults_give_the_guides_production() -> None:
    prod = load_settings(context_for({"phase": "3"})).prod
    assert (prod.min_tasks, prod.max_tasks) == (2, 20)
    assert (prod.redis_node_type, prod.redis_node_count) == ("cache.r7g.large", 3)
    assert (prod.api_workers, prod.max_memory_mb) == (2, 3072)
    assert (prod.migrate_data, prod.shift.enabled) == (False, False)
