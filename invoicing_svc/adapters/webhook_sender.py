"""Sends one signed webhook over HTTP (Standard Webhooks: webhook-id, -timestamp, -signature)."""

import time
from dataclasses import dataclass
from datetime import datetime

import httpx
from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class SendOutcome:
    status_code: int
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


def signature_headers(secret: str, event_id: str, sent_at: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, sent_at, body),
        "content-type": "application/json",
    }


class WebhookSender:
    def __init__(self, timeout_seconds: float) -> None:
        # No redirects and no proxies from the environment: a webhook goes where it was told.
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, trust_env=False
        )

    async def send(
        self, url: str, secret: str, event_id: str, body: str, sent_at: datetime
    ) -> SendOutcome:
        started = time.perf_counter()
        try:
            response = await self._client.post(
                url, content=body, headers=signature_headers(secret, event_id, sent_at, body)
            )
        except httpx.HTTPError as error:
            elapsed = int((time.perf_counter() - started) * 1000)
            return SendOutcome(0, f"{type(error).__name__}: {error}"[:500], elapsed)
        elapsed = int((time.perf_counter() - started) * 1000)
        refusal = "" if response.is_success else response.text[:500]
        return SendOutcome(response.status_code, refusal, elapsed)

    async def close(self) -> None:
        await self._client.aclose()
