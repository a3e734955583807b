"""Where a Lambda finds its notices' topic and bus, defined once: infra/constructs/notices.py
writes these variables into the Lambda's environment and runtime/common/notices.py reads them.
CDK-free and boto-free."""

from __future__ import annotations

TOPIC_VARIABLE = "NOTICE_TOPIC_ARN"
BUS_VARIABLE = "NOTICE_EVENT_BUS"
DEFAULT_BUS = "default"
