"""The webhook sink: POST each event's JSON to a URL, ``Idempotency-Key`` = the event id.

A post succeeds only on a 2xx answer. A failed post is retried with exponential backoff;
if it still fails, the sink reports how many events before it were accepted, and the
subscriber acknowledges exactly those: nothing past a failed post is ever committed. The
receiver de-duplicates by ``Idempotency-Key``, so a restart never leaves a duplicate there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from broker.hub.sinks.base import SinkError, SinkUnavailable, event_json
from broker.hub.sinks.corrections import correction_of
from broker.logs import get_logger

if TYPE_CHECKING:
    from broker.hub.delivered import HubEvent

log = get_logger("broker.sinks.webhook")


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        msg = "The webhook sink needs httpx: install sgb with its hub dependencies."
        raise SinkError(msg) from None
    return httpx


class WebhookSink:
    """POST each event to ``url``; success only on 2xx; retried with backoff.

    Args:
        url: an ``http`` or ``https`` URL (its query string is never logged).
        attempts: posts per event before the batch is reported as failed.
        backoff: the first wait between attempts, in seconds; it doubles up to ``max_backoff``.
        timeout: seconds to wait for each answer.
        sleep: how to wait (tests pass a fake).
    """

    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        attempts: int = 4,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = "The webhook sink needs an http:// or https:// URL with a host."
            raise SinkError(msg)
        httpx = _httpx()
        self.url = url
        self.where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        self.attempts, self.backoff, self.max_backoff, self._sleep = attempts, backoff, max_backoff, sleep
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": "sgb-hub", "Content-Type": "application/json"},
        )
        self._errors = (httpx.HTTPError,)

    def write(self, events: Sequence[HubEvent]) -> int:
        posted: set[str] = set()
        for index, event in enumerate(events):
            if event.event_id in posted:
                continue  # the same event twice in one batch: one post is enough
            self._post(event, index)
            posted.add(event.event_id)
        # The receiver decides what is new; from here every event in the batch is acknowledged.
        return len(posted)

    def _post(self, event: HubEvent, index: int) -> None:
        body = event_json(event).encode("utf-8")
        headers = {
            "Idempotency-Key": event.event_id,
            "Sgb-Event-Type": event.event_type,
            "Sgb-Audience": event.audience,
            "Sgb-Organisation": event.organisation,
            "Sgb-Policy-Version": event.policy_version,
        }
        found = correction_of(event.record)
        if found is not None:  # principle 10: the receiver applies it to the event it already has
            headers["Sgb-Correction"], headers["Sgb-Corrects-Event-Id"] = found
        wait = self.backoff
        for attempt in range(1, self.attempts + 1):
            status = None
            try:
                status = self._http.post(self.url, content=body, headers=headers).status_code
            except self._errors as exc:
                failure = type(exc).__name__
            else:
                if 200 <= status < 300:
                    return
                failure = f"HTTP {status}"
            log.warning(
                "webhook post failed",
                event_id=event.event_id,
                attempt=attempt,
                http_status=status,
                sink=self.kind,
            )
            if attempt < self.attempts:
                self._sleep(wait)
                wait = min(wait * 2, self.max_backoff)
        msg = f"The webhook at {self.where} did not accept a post after {self.attempts} attempts ({failure})."
        raise SinkUnavailable(msg, written=index)

    def close(self) -> None:
        self._http.close()
