"""What the read API returns: runs, their step records and their failed attempts."""

from outlast.core.models import ACTIVE_STATUSES, FINAL_STATUSES, AttemptRecord, Run, RunStatus, StepKind, StepRecord

__all__ = ["ACTIVE_STATUSES", "FINAL_STATUSES", "AttemptRecord", "Run", "RunStatus", "StepKind", "StepRecord"]
