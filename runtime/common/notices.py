"""A notice for each state change of the cutover or the traffic shift: one readable message on
the alarm topic (SNS, which `alarm_email` subscribes to) and one EventBridge event a user can
route anywhere (source `prostudio.migration`, detail-type `ProStudio state change`).

Callers publish once per change, right after the change itself was written (the shift's lock
record, the cutover's progress), so a change is announced at most once: if the publishing
invocation dies in between, that notice is lost rather than repeated. `key` names the change
(run, what, where), so a consumer can drop a repeat it receives from elsewhere. Publishing
never fails the work it reports on: a failed publish is logged as an error.

Where to publish comes from the environment of the Lambda: NOTICE_TOPIC_ARN (none: notices
are off) and NOTICE_EVENT_BUS (default: the account's default bus).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import aws
from .notice_environment import BUS_VARIABLE, DEFAULT_BUS, TOPIC_VARIABLE

SOURCE = "prostudio.migration"
DETAIL_TYPE = "ProStudio state change"
# SNS subjects are at most 100 characters; e-mail shows them as the subject line.
SUBJECT_LIMIT = 100
LOG = logging.getLogger("notices")


@dataclass(frozen=True)
class Notice:
    """`process` changed: `change` (started, step, paused, ..., completed) as `message` says."""

    process: str
    change: str
    message: str
    key: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"ProStudio {self.process}: {self.change}"[:SUBJECT_LIMIT]

    def text(self) -> str:
        lines = [self.message, ""]
        lines += [f"{name}: {value}" for name, value in self.details.items()]
        return "\n".join(lines).rstrip() + "\n"

    def detail(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "change": self.change,
            "message": self.message,
            "key": self.key,
            **self.details,
        }


@dataclass(frozen=True)
class NoticeTarget:
    topic_arn: str
    event_bus: str = DEFAULT_BUS

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> NoticeTarget | None:
        environ = os.environ if environ is None else environ
        topic = environ.get(TOPIC_VARIABLE, "").strip()
        if not topic:
            return None
        return cls(topic, environ.get(BUS_VARIABLE, "").strip() or DEFAULT_BUS)


Clients = Callable[[str], Any]


def publish(notice: Notice, target: NoticeTarget, clients: Clients = aws.client) -> bool:
    """The SNS message, then the event; False (and an error logged) when either failed."""
    try:
        clients("sns").publish(
            TopicArn=target.topic_arn, Subject=notice.subject, Message=notice.text()
        )
        answer = clients("events").put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(notice.detail(), default=str),
                    "EventBusName": target.event_bus,
                }
            ]
        )
    except (ClientError, BotoCoreError) as error:
        LOG.error("notice %s (%s) not published: %s", notice.key, notice.subject, error)
        return False
    if answer.get("FailedEntryCount"):
        LOG.error("notice %s: EventBridge refused the event: %s", notice.key, answer["Entries"])
        return False
    return True


def notify(notice: Notice, clients: Clients = aws.client) -> bool:
    """Publish `notice` where the environment says; False when notices are off or failed."""
    target = NoticeTarget.from_environment()
    return publish(notice, target, clients) if target is not None else False
