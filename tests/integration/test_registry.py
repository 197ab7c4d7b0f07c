"""Where endpoints come from without Kubernetes: ServiceEntry resolution DNS and
WorkloadEntries selected by a ServiceEntry's workloadSelector, end to end."""

from __future__ import annotations

from collections import Counter

from support import Proxy, Upstream, request


def test_dns_endpoints_and_workload_entries(tmp_path):
    with Upstream("dns") as dns, Upstream("we1") as we1, Upstream("we2") as we2:
        config = f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: bydns}}
spec:
  hosts: [bydns.example.internal]
  resolution: DNS
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: localhost, ports: {{http: {dns.port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: workloads}}
spec:
  hosts: [workloads.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 8080, name: http, protocol: HTTP}}]
  workloadSelector:
    labels: {{app: workloads}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: we-one}}
spec:
  address: 127.0.0.1
  ports: {{http: {we1.port}}}
  labels: {{app: workloads, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: we-two}}
spec:
  address: 127.0.0.1
  ports: {{http: {we2.port}}}
  labels: {{app: workloads, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: not-selected}}
spec:
  address: 127.0.0.1
  ports: {{http: 9}}
  labels: {{app: other}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: workloads}}
spec:
  host: workloads
  subsets: [{{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: workloads}}
spec:
  hosts: [workloads]
  http:
  - match: [{{uri: {{prefix: /v2}}}}]
    route: [{{destination: {{host: workloads, subset: v2}}}}]
  - route: [{{destination: {{host: workloads}}}}]
"""
        with Proxy(tmp_path, config) as proxy:
            r = request(proxy.port, "/", host="bydns.example.internal")
            assert r.status == 200 and r.json()["server"] == "dns"
            seen = Counter(request(proxy.port, "/", host="workloads:8080").json()["server"] for _ in range(30))
            assert set(seen) == {"we1", "we2"}  # the unselected WorkloadEntry (port 9) never appears
            assert {request(proxy.port, "/v2", host="workloads:8080").json()["server"] for _ in range(5)} == {"we2"}
