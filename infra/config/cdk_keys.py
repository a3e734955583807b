"""CDK's own context keys, named rather than guessed, so they pass the unknown-flag check.

The CLI and cx-api put `aws:cdk:*` keys in context, cdk.json holds `@aws-cdk/*` feature flags,
cdk.context.json holds the CLI's own settings and one cached result per lookup
(`<provider>:account=...:region=...`).
"""

from __future__ import annotations

CDK_KEY_PREFIXES = ("aws:cdk:", "@aws-cdk/", "@aws-cdk-containers/")
CDK_KEYS = frozenset({"acknowledged-issue-numbers", "cli-telemetry"})
CDK_LOOKUP_PROVIDERS = (
    "ami",
    "availability-zones",
    "cc-api-provider",
    "endpoint-service-availability-zones",
    "hosted-zone",
    "key-provider",
    "load-balancer",
    "load-balancer-listener",
    "plugin",
    "security-group",
    "ssm",
    "vpc-provider",
)


def is_cdk_key(key: str) -> bool:
    """A key CDK itself puts in context (matched exactly, case-sensitively)."""
    return (
        key in CDK_KEYS
        or key.startswith(CDK_KEY_PREFIXES)
        or any(key.startswith(f"{provider}:") for provider in CDK_LOOKUP_PROVIDERS)
    )
