"""A real Prometheus server scrapes fastproxy; PromQL sees the seed 1.2 split."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from obs_support import seed_split_config
from support import Proxy, Upstream, free_port, request, wait_until

PROMETHEUS = shutil.which("prometheus")


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _value(port: int, promql: str) -> float | None:
    try:
        result = _query(port, promql)
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


@pytest.mark.skipif(
    PROMETHEUS is None and not os.environ.get("CI"), reason="prometheus not installed (apt: prometheus)"
)
def test_prometheus_sees_the_ninety_ten_split(tmp_path: Path) -> None:
    assert PROMETHEUS is not None, "CI must install the Debian package prometheus"
    n = 300
    with (
        Upstream("v10") as a,
        Upstream("v11") as b,
        Proxy(tmp_path, seed_split_config([a.port], [b.port]), "--seed", "11") as proxy,
    ):
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "- job_name: fastproxy\n"
            "  metrics_path: /stats/prometheus\n"
            f"  static_configs: [{{targets: ['127.0.0.1:{proxy.admin_port}']}}]\n"
        )
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        prom = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(n):
                assert request(proxy.port, "/", host="demoapp:8080").status == 200
            total_q = 'sum(istio_requests_total{destination_service_name="demoapp",reporter="source"})'
            wait_until(lambda: _value(prom_port, total_q) == n, timeout=40, interval=0.5)
            share = _value(
                prom_port,
                'sum(istio_requests_total{destination_service_name="demoapp",destination_version="v1.1"})'
                f" / {total_q}",
            )
            assert share is not None and 0.06 < share < 0.14, share
            # The histogram works with histogram_quantile, as Kiali's response-time query needs.
            p95 = _value(
                prom_port,
                "histogram_quantile(0.95, sum(istio_request_duration_milliseconds_bucket) by (le))",
            )
            assert p95 is not None and 0 < p95 < 1000
            up = _query(prom_port, 'up{job="fastproxy"}')
            assert up and up[0]["value"][1] == "1"
        finally:
            prom.terminate()
            prom.wait(15)
            log.close()
