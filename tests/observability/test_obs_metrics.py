"""Istio standard metrics, operational metrics, admin pages and the graph data,
through a real fastproxy subprocess and real upstreams."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from obs_support import parse_prometheus, seed_split_config, total
from support import Proxy, Upstream, request, service_entry, wait_until

from fastproxy.admin.stats import BUCKETS, LABELS, Merged, Series, render_prometheus

ISTIO_HISTOGRAMS = ("istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes")


def test_istio_metrics_for_the_seed_split(tmp_path: Path) -> None:
    with Upstream("v10") as a, Upstream("v11") as b:
        cfg = seed_split_config([a.port], [b.port])
        with Proxy(tmp_path, cfg, "--seed", "7") as proxy:
            for _ in range(200):
                assert request(proxy.port, "/", host="demoapp:8080").status == 200
            assert request(proxy.port, "/", host="nowhere:8080").status == 404
            assert request(proxy.port, "/x", host="demoapp:8080", method="POST", body=b"12345").status == 200
            text = proxy.admin("/stats/prometheus").decode()
    samples = parse_prometheus(text)
    v10 = total(samples, "istio_requests_total", destination_version="v1.0", response_code="200")
    v11 = total(samples, "istio_requests_total", destination_version="v1.1", response_code="200")
    assert v10 + v11 == 201
    assert 0.8 < v10 / 201 < 0.97
    one = next(lbl for n, lbl, _ in samples if n == "istio_requests_total" and lbl["destination_version"] == "v1.1")
    assert list(one) == list(LABELS)
    assert one["reporter"] == "source"
    assert one["destination_service"] == "demoapp.default.svc.cluster.local"
    assert one["destination_service_name"] == "demoapp"
    assert one["destination_service_namespace"] == "default"
    assert one["destination_app"] == "demoapp"
    assert one["request_protocol"] == "http"
    assert one["response_flags"] == "-"
    assert one["connection_security_policy"] == "unknown"
    assert one["source_workload"] == "unknown"
    nr = [lbl for n, lbl, _ in samples if n == "istio_requests_total" and lbl["response_flags"] == "NR"]
    assert len(nr) == 1 and nr[0]["response_code"] == "404" and nr[0]["destination_workload"] == "unknown"
    for name in ISTIO_HISTOGRAMS:
        assert f"# TYPE {name} histogram" in text
        assert total(samples, f"{name}_count") == 202
        les = [lbl["le"] for n, lbl, _ in samples if n == f"{name}_bucket" and lbl["destination_version"] == "v1.1"]
        assert les[-1] == "+Inf" and len(les) == len(BUCKETS) + 1
    assert "# TYPE istio_requests_total counter" in text
    # The POST's 5-byte body lands in the le="5" bucket of istio_request_bytes.
    assert total(samples, "istio_request_bytes_sum") == 5
    small = [v for n, lbl, v in samples if n == "istio_request_bytes_bucket" and lbl["le"] == "0.5"]
    assert sum(small) == 201
    assert total(samples, "fastproxy_config_loads_total") == 1
    assert total(samples, "fastproxy_upstream_requests_total") == 201
    assert total(samples, "fastproxy_upstream_pool_connections", state="idle") >= 2


def test_labels_are_escaped_and_histograms_cumulative() -> None:
    labels = tuple('we"ird\\\nname' if name == "destination_app" else "x" for name in LABELS)
    s = Series(labels, "c", "h", "mesh", "")
    s.count = 3
    counts = [0] * len(BUCKETS + (float("inf"),))
    counts[0] = counts[3] = counts[-1] = 1
    s.dur_b = counts  # the buckets are assigned whole: compiled, they are a C array
    merged = Merged()
    merged.series[(labels, "c", "h", "mesh")] = s
    text = render_prometheus(merged, {"retries": 2}, {"downstream_connections": 1}).decode()
    assert 'destination_app="we\\"ird\\\\\\nname"' in text
    samples = parse_prometheus(text)
    buckets = [v for n, _, v in samples if n == "istio_request_duration_milliseconds_bucket"]
    assert buckets[0] == 1 and buckets[3] == 2 and buckets[-2] == 2 and buckets[-1] == 3
    assert "# TYPE fastproxy_retries_total counter" in text


def test_fault_abort_flags_and_clusters_page(tmp_path: Path) -> None:
    with Upstream("v10") as a, Upstream("v11") as b:
        cfg = seed_split_config([a.port], [b.port], "1.4-fault-injection")
        with Proxy(tmp_path, cfg, "--seed", "3") as proxy:
            codes = [request(proxy.port, "/canary", host="demoapp:8080").status for _ in range(60)]
            aborted = codes.count(555)
            assert 0 < aborted < 60
            samples = parse_prometheus(proxy.admin("/stats/prometheus").decode())
            fi = total(samples, "istio_requests_total", response_code="555", response_flags="FI")
            assert fi == aborted
            fi_labels = next(
                lbl for n, lbl, _ in samples if n == "istio_requests_total" and lbl["response_flags"] == "FI"
            )
            assert fi_labels["destination_workload"] == "unknown"
            assert fi_labels["destination_service_name"] == "demoapp"
            clusters = proxy.admin("/clusters").decode()
            rq_total = re.search(
                rf"outbound\|8080\|v11\|demoapp.default.svc.cluster.local::127.0.0.1:{b.port}::rq_total::(\d+)",
                clusters,
            )
            assert rq_total and int(rq_total.group(1)) == 60 - aborted
            graph = json.loads(proxy.admin("/graph.json"))
            edge = next(e for e in graph["edges"] if e["from"] == "src:mesh" and "demoapp" in e["to"])
            assert edge["fault_injected"] == aborted
            assert edge["error_rate"] == pytest.approx(100 * aborted / 60, abs=0.1)
            assert edge["health"] in ("degraded", "failure")


def test_index_ready_and_config_dump(tmp_path: Path) -> None:
    with Upstream() as up:
        cfg = service_entry("demo", 80, [(up.port, {"app": "demo", "version": "v1"})])
        with Proxy(tmp_path, cfg) as proxy:
            request(proxy.port, "/", host="demo")
            index = proxy.admin("/").decode()
            for path in (
                "/stats/prometheus",
                "/config_dump",
                "/routes",
                "/clusters",
                "/ready",
                "/graph",
                "/graph.json",
            ):
                assert f'href="{path}"' in index
                proxy.admin(path)  # every link answers 200
            assert proxy.admin("/ready") == b"LIVE\n"
            dump = json.loads(proxy.admin("/config_dump"))
            state = [s for s in dump["endpoint_state"] if s["endpoint"] == f"127.0.0.1:{up.port}"]
            assert state and state[0]["health"] == "HEALTHY" and state[0]["requests"] == 1
            assert state[0]["pool_idle"] == 1
            page = proxy.admin("/graph").decode()
            assert (
                "/graph.json" in page and "<script" in page and "http://" not in page.replace("http://www.w3.org", "")
            )
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{proxy.admin_port}/nope", timeout=5)


def test_workers_report_totals(tmp_path: Path) -> None:
    with Upstream("v10") as a, Upstream("v11") as b:
        cfg = seed_split_config([a.port], [b.port])
        with Proxy(tmp_path, cfg, "--workers", "2") as proxy:
            for _ in range(100):
                assert request(proxy.port, "/", host="demoapp:8080").status == 200

            def counted() -> bool:
                samples = parse_prometheus(proxy.admin("/stats/prometheus").decode())
                return total(samples, "istio_requests_total") == 100

            wait_until(counted, timeout=10)
            samples = parse_prometheus(proxy.admin("/stats/prometheus").decode())
            assert total(samples, "fastproxy_workers") == 2
            assert total(samples, "fastproxy_config_loads_total") == 1
            assert total(samples, "istio_request_duration_milliseconds_count") == 100
            graph = json.loads(proxy.admin("/graph.json"))
            shares = {e["to"].rsplit("|", 1)[-1]: e["share"] for e in graph["edges"] if e["from"].startswith("svc:")}
            assert shares["v1.0"] + shares["v1.1"] == pytest.approx(100, abs=0.2)


def test_mirror_is_a_dashed_edge(tmp_path: Path) -> None:
    with Upstream("v10") as a, Upstream("v11") as b:
        cfg = seed_split_config([a.port], [b.port], "1.6-mirror")
        with Proxy(tmp_path, cfg) as proxy:
            for _ in range(20):
                assert request(proxy.port, "/", host="demoapp:8080").status == 200
            wait_until(lambda: len(b.requests) == 20)
            graph = json.loads(proxy.admin("/graph.json"))
            mirror = [e for e in graph["edges"] if e["kind"] == "mirror"]
            assert len(mirror) == 1 and mirror[0]["to"].endswith("|v1.1") and mirror[0]["total"] == 20
            svc = next(n for n in graph["nodes"] if n["id"] == "svc:demoapp.default.svc.cluster.local")
            assert svc.get("has_mirroring") is True
            samples = parse_prometheus(proxy.admin("/stats/prometheus").decode())
            assert total(samples, "fastproxy_mirror_sent_total") == 20


def test_each_status_is_counted_under_its_own_code(tmp_path: Path) -> None:
    # 200 and 456 differ only in bit 8: the recent-key cache of admin/stats.py puts them in
    # one slot, so every alternation replaces the slot's key and must still count right.
    with Upstream("v10") as a:
        cfg = service_entry("codes", 8080, [(a.port, {"app": "codes", "version": "v1"})])
        with Proxy(tmp_path, cfg) as proxy:
            sent = {200: 0, 456: 0, 503: 0}
            for i in range(45):
                code = (200, 456, 200, 503, 456)[i % 5]
                assert request(proxy.port, f"/status/{code}", host="codes:8080").status == code
                sent[code] += 1
            samples = parse_prometheus(proxy.admin("/stats/prometheus").decode())
    for code, n in sent.items():
        assert total(samples, "istio_requests_total", response_code=str(code)) == n
        assert total(samples, "istio_request_duration_milliseconds_count", response_code=str(code)) == n
