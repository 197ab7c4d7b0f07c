"""Micro-benchmark: µs per parsed request/response for both codecs.

    PYTHONPATH=. python bench/micro_codec.py [-n 20000]

A typical request here is a GET with 8 headers (what a browser or a service
client sends), fed one request per feed() as a socket read would deliver
it, plus a pipelined variant (16 requests per feed) and a small
Content-Length response.
"""

from __future__ import annotations

import argparse
import time

from fastproxy.codec import fast, reference

REQUEST = (
    b"GET /api/v1/users/42?fields=name,email HTTP/1.1\r\n"
    b"Host: reviews.default.svc.cluster.local:9080\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) fastproxy-bench/1.0\r\n"
    b"Accept: application/json, text/plain, */*\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Connection: keep-alive\r\n"
    b"X-Request-Id: 3f1c2a7e-9b0d-4d8e-a1b2-c3d4e5f60718\r\n"
    b"Cookie: session=abcdef0123456789; theme=dark\r\n"
    b"\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 27\r\n"
    b"Date: Wed, 26 Nov 2025 12:00:00 GMT\r\n"
    b"Server: envoy\r\n"
    b"X-Envoy-Upstream-Service-Time: 3\r\n"
    b"\r\n"
    b'{"id":42,"name":"reviewer"}'
)


class NullSink:
    __slots__ = ()

    def on_request_head(self, head: object) -> None:
        pass

    def on_request_body(self, data: bytes) -> None:
        pass

    def on_request_end(self) -> None:
        pass

    on_response_head = on_request_head
    on_response_body = on_request_body
    on_response_end = on_request_end

    def on_upgrade(self, rest: bytes) -> None:
        pass


def per_item(fn, n: int, per_call: int) -> float:
    fn(max(n // 20, 1))  # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return best / (n * per_call) * 1e6


def bench(module, n: int) -> dict[str, float]:
    sink = NullSink()

    def requests(k: int) -> None:
        feed = module.RequestParser(sink).feed
        for _ in range(k):
            feed(REQUEST)

    pipelined = REQUEST * 16

    def pipelined_requests(k: int) -> None:
        feed = module.RequestParser(sink).feed
        for _ in range(k):
            feed(pipelined)

    def responses(k: int) -> None:
        feed = module.ResponseParser(sink).feed
        for _ in range(k):
            feed(RESPONSE)

    return {
        "request (1 per feed)": per_item(requests, n, 1),
        "request (16 per feed)": per_item(pipelined_requests, max(n // 16, 1), 16),
        "response (CL body)": per_item(responses, n, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000, help="messages per run (h11 runs n/10)")
    args = ap.parse_args()
    results = {"httptools": bench(fast, args.n), "h11": bench(reference, max(args.n // 10, 1))}
    print(f"{'case':24} {'httptools µs':>14} {'h11 µs':>10}")
    for case in results["httptools"]:
        print(f"{case:24} {results['httptools'][case]:14.2f} {results['h11'][case]:10.2f}")


if __name__ == "__main__":
    main()
