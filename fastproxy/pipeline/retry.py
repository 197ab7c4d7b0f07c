"""Retry decisions as pure functions of the compiled RetryPolicy (Envoy's
retry_state_impl logic, traffic-semantics 8.3)."""

from __future__ import annotations

from fastproxy import table

CONNECT_FAILURES = frozenset({"local connection failure", "remote connection failure", "connection timeout"})
# Per-try timeouts are local resets that only these conditions retry.
_RESET_LIKE = table.RETRY_RESET | table.RETRY_5XX | table.RETRY_GATEWAY_ERROR
_GRPC = {
    b"1": table.RETRY_GRPC_CANCELLED,
    b"4": table.RETRY_GRPC_DEADLINE_EXCEEDED,
    b"8": table.RETRY_GRPC_RESOURCE_EXHAUSTED,
    b"13": table.RETRY_GRPC_INTERNAL,
    b"14": table.RETRY_GRPC_UNAVAILABLE,
}


def retry_on_response(
    policy: table.RetryPolicy,
    status: int,
    headers: list[tuple[bytes, bytes]],
    retriable_headers: frozenset[bytes] = frozenset(),
) -> bool:
    """`retriable_headers`: names from the request's x-envoy-retriable-header-names."""
    rc = policy.retry_on
    if not rc:
        return False
    ratelimited = False
    grpc_status = None
    for name, value in headers:
        if name == b"x-envoy-ratelimited":
            ratelimited = True
        elif name == b"grpc-status":
            grpc_status = value
    if ratelimited:
        # Such responses are retried only under envoy-ratelimited, whatever else matches.
        return bool(rc & table.RETRY_ENVOY_RATELIMITED)
    if rc & table.RETRY_5XX and 500 <= status <= 599:
        return True
    if rc & table.RETRY_GATEWAY_ERROR and status in (502, 503, 504):
        return True
    if rc & table.RETRY_RETRIABLE_4XX and status == 409:
        return True
    if rc & table.RETRY_RETRIABLE_STATUS_CODES and status in policy.retriable_codes:
        return True
    if (
        rc & table.RETRY_RETRIABLE_HEADERS
        and retriable_headers
        and any(name in retriable_headers for name, _ in headers)
    ):
        return True
    if grpc_status is not None:
        bit = _GRPC.get(grpc_status.strip())
        if bit is not None and rc & bit:
            return True
    return False


def retry_on_reset(policy: table.RetryPolicy, reason: str, request_sent: bool) -> bool:
    rc = policy.retry_on
    if not rc or reason == "overflow":
        return False
    if reason in CONNECT_FAILURES and rc & table.RETRY_CONNECT_FAILURE:
        return True
    if rc & table.RETRY_RESET_BEFORE_REQUEST and not request_sent:
        return True
    return bool(rc & _RESET_LIKE)


def retry_on_per_try_timeout(policy: table.RetryPolicy) -> bool:
    return bool(policy.retry_on & _RESET_LIKE)


def backoff(policy: table.RetryPolicy, retry_number: int, rnd: int) -> float:
    """Envoy's fully jittered exponential backoff: uniform in [0, min(base*2^(n-1), max))."""
    ceiling_ms = int(min(policy.backoff_base * (1 << (retry_number - 1)), policy.backoff_max) * 1000)
    if ceiling_ms <= 0:
        return 0.0
    return (rnd % ceiling_ms) / 1000.0
