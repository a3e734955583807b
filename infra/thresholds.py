"""The numbers that decide when traffic moves: the alarms' thresholds, the weighted records'
starting weights and TTL, and Route53's probe timing.

The one home of each: the constructs build them into the template (monitoring,
failover_alarms, weighted_dns, alarm_health_check) and the cutover rehearsal replays the same
ones on its scaled clock. CDK-free, so the rehearsal imports it without starting the CDK.
"""

from __future__ import annotations

# The guide's success criteria: p99 under 100 ms and (nearly) no server errors.
P99_LATENCY_SECONDS = 0.1
SERVER_ERROR_PERCENT = 1
# Every period breaching, three one-minute periods: a fault is routed around about three
# minutes after it starts (plus Route53's own reading and the record's 60 s TTL).
FAILOVER_PERIODS = 3
# 5xx answers per minute (one a second) from the targets, or from the load balancer itself.
SERVER_ERRORS_PER_MINUTE = 60
# Route53 answers a weight of 0 only when every non-zero record is unhealthy.
INITIAL_OLD_WEIGHT = 100
INITIAL_NEW_WEIGHT = 0
# Shifted records must expire quickly; alias records have no TTL of their own.
RECORD_TTL_SECONDS = 60
# Route53's standard endpoint check: every 30 s from each checker, 3 failures (or successes)
# in a row to change state.
PROBE_INTERVAL_SECONDS = 30
PROBE_FAILURE_THRESHOLD = 3
