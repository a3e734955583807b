"""Turns CDK context into typed, validated, frozen settings.

This is the only package that interprets context. `app.py` lays the raw context over the
committed environment file (`with_environment`) and hands the mapping to `load_settings`, a
pure function of it; stacks and constructs receive the dataclasses of `settings` and never
read context or the environment themselves. Each rule has one module:

- `parsing`: one flag's raw value to a typed value or a one-line ConfigError
- `flags`: every flag's default, the retired flags, the unknown-flag check
- `cdk_keys`: CDK's own context keys, which pass that check
- `environments`: the committed environment file under `-c`
- `settings`: the frozen dataclasses and the stacks' names
- `releases`: which Redis restores which DUMP format
- `shift_schedule`: the deploy-time shift's schedule rule
- `loader`: `load_settings`, and the rules that tie flags together

The names below are this package's interface; each is defined in the module named above.
"""

from infra.config.cdk_keys import is_cdk_key
from infra.config.environments import ENVIRONMENTS_DIR, environment_file, with_environment
from infra.config.flags import DEFAULTS, RETIRED_FLAGS
from infra.config.loader import BOX_INSTANCE_TYPES, load_settings
from infra.config.parsing import ConfigError, parse_bool, parse_choice, parse_int, parse_text
from infra.config.releases import BOX_REDIS, CACHE_ENGINES, CACHE_RELEASES, RedisRelease
from infra.config.settings import (
    PROD_STACK,
    STACK_NAMES,
    ZERO_COST_STACK,
    DnsSettings,
    ProdSettings,
    Settings,
    ShiftSettings,
    ZeroCostSettings,
)
from infra.config.shift_schedule import (
    CUSTOM_RESOURCE_LIMIT_SECONDS,
    ROLLBACK_SECONDS,
    SHIFT_MARGIN_SECONDS,
    validate_schedule,
)

__all__ = [
    "BOX_INSTANCE_TYPES",
    "BOX_REDIS",
    "CACHE_ENGINES",
    "CACHE_RELEASES",
    "CUSTOM_RESOURCE_LIMIT_SECONDS",
    "DEFAULTS",
    "ENVIRONMENTS_DIR",
    "PROD_STACK",
    "RETIRED_FLAGS",
    "ROLLBACK_SECONDS",
    "SHIFT_MARGIN_SECONDS",
    "STACK_NAMES",
    "ZERO_COST_STACK",
    "ConfigError",
    "DnsSettings",
    "ProdSettings",
    "RedisRelease",
    "Settings",
    "ShiftSettings",
    "ZeroCostSettings",
    "environment_file",
    "is_cdk_key",
    "load_settings",
    "parse_bool",
    "parse_choice",
    "parse_int",
    "parse_text",
    "validate_schedule",
    "with_environment",
]
