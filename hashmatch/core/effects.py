"""What follows every answer, whichever face gave it: per-item metrics (overall and per
tenant), a webhook per matched item, and the call's audit tally."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hashmatch.core.calls import Call
from hashmatch.core.metrics import Metrics
from hashmatch.core.outcome import Outcome
from hashmatch.core.webhooks import WebhookNotifier, match_event

if TYPE_CHECKING:
    from hashmatch.video.matching import VideoMatch


class Effects:
    def __init__(self, metrics: Metrics, webhooks: WebhookNotifier | None = None) -> None:
        self.metrics = metrics
        self.webhooks = webhooks

    def video_answered(self, call: Call, frames: int, matches: Sequence[VideoMatch]) -> None:
        """A video matched: its frames counted as the tenant's items (what its quota is
        charged), the video as matched once, per bank in the audit."""
        who = call.caller
        banks = {m.bank for m in matches}
        call.tally.matched += 1 if banks else 0
        call.tally.by_bank.update(banks)
        self.metrics.count_video(None if who.open else who.tenant_id, frames, bool(banks))

    def answered(self, call: Call, outcomes: Sequence[Outcome]) -> None:
        who = call.caller
        call.tally.add(outcomes)
        self.metrics.count_outcomes(None if who.open else who.tenant_id, outcomes)
        if self.webhooks is None:
            return
        for o in outcomes:
            if o.is_match and o.matches is not None:
                event = match_event(o.content_id, o.tracking_id, o.matches.matches)
                self.webhooks.notify(who.tenant_id, event)
