"""Operator control of a shift in flight (the control record) and the notices of each state
change, through moto: the deploy-time handler is driven as the Provider drives it, the CLI
writes the decisions, and SNS and EventBridge deliver into SQS queues that the test reads."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from shift_control import Decision, write_decision
from shift_engine import POLL_SECONDS, ShiftFailed
from shift_handler import check_event, handle_event
from shift_support import NEW_ID, OLD_ID, RECORD_NAME, Env, load_cli
from test_shift_handler import event, properties

cli = load_cli()
OPERATOR = "arn:aws:sts::123456789012:assumed-role/Operators/alice"


@dataclass
class Inbox:
    """What reached the alarm topic (SNS -> SQS) and the default bus (rule -> SQS)."""

    sqs: Any
    topic_queue: str
    event_queue: str

    def _drain(self, queue: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    def subjects(self) -> list[str]:
        return [body["Subject"] for body in self._drain(self.topic_queue)]

    def changes(self) -> list[str]:
        return [body["detail"]["change"] for body in self._drain(self.event_queue)]


@pytest.fixture
def inbox(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events = boto3.client("events", region_name="us-east-1")
    topic = sns.create_topic(Name="prostudio-alarms")["TopicArn"]

    def queue(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return url, arn["QueueArn"]

    topic_url, topic_arn = queue("topic")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=topic_arn)
    event_url, event_arn = queue("events")
    events.put_rule(Name="notices", EventPattern=json.dumps({"source": ["prostudio.migration"]}))
    events.put_targets(Rule="notices", Targets=[{"Id": "queue", "Arn": event_arn}])
    monkeypatch.setenv("NOTICE_TOPIC_ARN", topic)
    yield Inbox(sqs, topic_url, event_url)


class Deploy:
    """A deploy-time shift: on_event once, then is_complete on each (virtual) poll."""

    def __init__(self, env: Env, request_id: str = "req-1", **props: Any) -> None:
        self.env = env
        self.ctx = env.context()
        cfn_event = event("Create", request_id, properties(env, **props))
        self.event = {**cfn_event, **handle_event(cfn_event, self.ctx)}
        self.done = False
        self.failure: ShiftFailed | None = None

    def poll(self) -> dict[str, Any]:
        self.env.clock.sleep(POLL_SECONDS)
        answer = check_event(self.event, self.ctx)
        self.done = answer["IsComplete"]
        return answer

    def polls(self, count: int) -> None:
        for _ in range(count):
            if not self.done:
                self.poll()


def _argv(env: Env, command: str) -> list[str]:
    return [command, "--zone-id", env.zone_id, "--name", RECORD_NAME,
            "--old-id", OLD_ID, "--new-id", NEW_ID]  # fmt: skip


def control(env: Env, decision: str, deploy: Deploy) -> int:
    """The CLI's `decision`, while the deploy keeps polling (its sleeps are the deploy's polls)."""

    class Sts:
        def get_caller_identity(self) -> dict[str, str]:
            return {"Arn": OPERATOR}

    def sleep(seconds: float) -> None:
        if deploy.done:
            env.clock.sleep(seconds)
            return
        try:
            deploy.poll()
        except ShiftFailed as failed:
            deploy.failure, deploy.done = failed, True

    return int(cli.main(_argv(env, decision), context=env.context(sts=Sts(), sleep=sleep)))


def _status(env: Env) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(_argv(env, "status"), context=env.context()) == 0
    shown: dict[str, Any] = json.loads(out.getvalue())
    return shown


def test_pause_holds_the_weights_and_resume_continues_with_the_rest_of_the_soak(
    env: Env, inbox: Inbox
) -> None:
    # Given a deploy walking 0 -> 100 in steps of 25, soaking 60 s each, at its first soak
    deploy = Deploy(env, IntervalSeconds=60)
    deploy.polls(3)  # step to 25, in sync, 10 s of soak
    assert env.weights() == (75, 25)
    # When an operator pauses it
    assert control(env, "pause", deploy) == 0
    # Then the weights hold, poll after poll, far past the soak
    deploy.polls(30)
    assert env.weights() == (75, 25)
    shown = _status(env)
    assert shown["control"]["decision"] == "pause"
    assert shown["control"]["by"] == OPERATOR and shown["control"]["applies"] is True
    assert shown["shift"]["paused_seconds"] >= 300
    # When it is resumed, the step soaks only what was left of its 60 s (about 40 s)
    assert control(env, "resume", deploy) == 0
    polls_to_next_step = 0
    while env.weights() == (75, 25):
        deploy.poll()
        polls_to_next_step += 1
    assert 3 <= polls_to_next_step <= 6
    assert env.weights() == (50, 50)
    while not deploy.done:
        deploy.poll()
    assert env.weights() == (0, 100)
    # And every state change reached the topic and the bus exactly once
    changes = ["started", "step", "paused", "resumed", "step", "step", "step", "completed"]
    assert inbox.changes() == changes
    assert inbox.subjects() == [f"ProStudio traffic shift: {change}" for change in changes]


def test_promote_skips_the_remaining_soaks(env: Env, inbox: Inbox) -> None:
    deploy = Deploy(env, IntervalSeconds=240)
    deploy.polls(2)
    assert control(env, "promote", deploy) == 0
    polls = 0
    while not deploy.done:
        deploy.poll()
        polls += 1
    assert env.weights() == (0, 100)
    # Three more steps, each one change and its INSYNC, no 240 s soak
    assert polls <= 3 * 3 + 2
    assert inbox.changes().count("promoted") == 1


def test_abort_walks_back_at_once_and_fails_the_deploy(env: Env, inbox: Inbox) -> None:
    deploy = Deploy(env, IntervalSeconds=60)
    while env.weights() != (50, 50):
        deploy.poll()
    batches_before = len(env.recorder.pairs)
    assert control(env, "abort", deploy) == 0
    assert str(deploy.failure) == f"aborted by {OPERATOR}; walked back to old 100 new 0"
    # One change back to where the deploy started; the lock is released
    assert env.recorder.pairs[batches_before:] == [(100, 0)]
    assert env.lock_values() == []
    assert inbox.changes()[-1] == "aborted"


def test_a_pause_never_holds_a_deploy_past_its_time(env: Env, inbox: Inbox) -> None:
    deploy = Deploy(env, IntervalSeconds=60, TimeoutSeconds=900)
    deploy.polls(8)
    assert control(env, "pause", deploy) == 0
    held = env.weights()
    with pytest.raises(ShiftFailed) as failed:
        for _ in range(200):
            deploy.poll()
    message = str(failed.value)
    assert message.startswith("the shift's time ran out (900s, paused by " + OPERATOR)
    assert "\n" not in message
    assert env.weights()[1] <= held[1]
    assert env.lock_values() == []
    assert inbox.changes()[-1] == "failed"


def test_a_decision_for_another_run_is_ignored(env: Env) -> None:
    first = Deploy(env, request_id="req-1", TargetWeight=50, IntervalSeconds=0)
    while not first.done:
        first.poll()
    # A pause written for the finished run stays in the zone...
    records = env.context().records(env.request())
    write_decision(records, Decision("pause", "req-1", OPERATOR, int(env.clock())))
    # ...and the next run walks on regardless
    second = Deploy(env, request_id="req-2", TargetWeight=100, IntervalSeconds=0)
    for _ in range(20):
        if not second.done:
            second.poll()
    assert env.weights() == (0, 100)
    assert _status(env)["control"]["applies"] is False


def test_control_commands_need_a_shift_in_flight(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(_argv(env, "pause"), context=env.context()) == 2
    assert capsys.readouterr().err == (
        "error: no shift in progress on api.example.com.; nothing to pause\n"
    )
