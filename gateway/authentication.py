"""Who a merchant request is from: its API key (failed ones throttled per client address and key
id), then the merchant's rate limit."""

from fastapi import Request

from gateway.errors import ApiError
from gateway.merchants import KEY_PREFIX, KeyCache, Merchant, key_id_of
from gateway.rate_limit import FailureThrottle, RateLimiter


async def authenticate(
    request: Request, keys: KeyCache, failures: FailureThrottle, limiter: RateLimiter
) -> Merchant:
    """The merchant of the request's bearer key, once its rate limit lets the request through;
    the limiter's decision is left on `request.state.rate_limit` for the response headers."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "authentication_error",
            "missing_api_key",
            "send your API key as Authorization: Bearer <key>",
        )
    merchant = await _merchant_of(request, key.strip(), keys, failures)
    decision = limiter.take(merchant.id)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limit_error",
            "rate_limited",
            f"more than {decision.limit} requests a minute",
            retry_after=decision.reset_seconds,
        )
    return merchant


async def _merchant_of(
    request: Request, key: str, keys: KeyCache, failures: FailureThrottle
) -> Merchant:
    """The key's merchant. A key this process validated recently needs no lookup; any other is
    looked up unless its client address or key id failed too often lately."""
    merchant = keys.remembered(key)
    if merchant is not None:
        return merchant
    subjects = [f"address:{request.client.host if request.client else ''}"]
    if key.startswith(KEY_PREFIX):
        # Cut short: a made-up id is not kept whole (real ones have 16 characters).
        subjects.append(f"key:{key_id_of(key)[:32]}")
    wait = failures.wait(subjects)
    if wait:
        raise ApiError(
            429,
            "rate_limit_error",
            "too_many_failed_authentications",
            "too many failed authentications from this address or with this key; retry later",
            retry_after=wait,
        )
    merchant = await keys.look_up(key)
    if merchant is None:
        failures.failed(subjects)
        raise ApiError(401, "authentication_error", "invalid_api_key", "the API key is not valid")
    return merchant
