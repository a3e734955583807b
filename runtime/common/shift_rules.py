"""The traffic shift's rules that the CDK app and the shift Lambda both apply, defined once.

infra reads them at synth (the schedule's worst case, the lock record's IAM scope, the
construct's choices); runtime/traffic_shift applies them at run time. CDK-free and boto-free.
"""

from __future__ import annotations

# The lock record of a shifted name is a TXT record named `_shift.<name>`.
LOCK_PREFIX = "_shift."
# Where a failed or aborted shift puts the traffic: the last weight that was healthy, or all
# of it on the old record.
ROLLBACK_TO_HEALTHY = "healthy"
ROLLBACK_TO_OLD = "old"
ROLLBACK_CHOICES = (ROLLBACK_TO_HEALTHY, ROLLBACK_TO_OLD)
# Route53 documents propagation to all its name servers within 60 seconds; a rising step
# that is not INSYNC by then is rolled back.
SYNC_TIMEOUT_SECONDS = 60
# How often a running shift is polled (health gates are read on every poll).
POLL_SECONDS = 10
