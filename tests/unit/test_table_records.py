"""The route-table records behave as frozen dataclasses, compiled (table.pxd) or as the pure twin."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from fastproxy import table


def _cluster() -> table.Cluster:
    ep = table.Endpoint(address="127.0.0.1", port=8080, labels={"version": "v1"}, version="v1")
    return table.Cluster(
        name="outbound|80|v1|r", service="r", namespace="default", port=80, subset="v1", endpoints=(ep,)
    )


def test_records_are_frozen() -> None:
    dest = table.Destination(cluster_name="c", cluster=_cluster())
    route = table.Route(name="r", virtual_service="r.default", destinations=(dest,), cumulative=(100,))
    with pytest.raises(AttributeError):
        route.timeout = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        dest.cluster_name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        table.DEFAULT_RETRY.attempts = 9  # type: ignore[misc]


def test_fields_replace_and_equality_work_as_for_dataclasses() -> None:
    names = [f.name for f in dataclasses.fields(table.RetryPolicy)]
    assert names == [
        "attempts", "retry_on", "retriable_codes", "per_try_timeout", "backoff_base", "backoff_max",
        "retry_other_hosts",
    ]  # fmt: skip
    changed = dataclasses.replace(table.DEFAULT_RETRY, retry_other_hosts=False)
    assert changed.retry_other_hosts is False and changed.attempts == table.DEFAULT_RETRY.attempts
    assert changed != table.DEFAULT_RETRY
    assert dataclasses.replace(changed, retry_other_hosts=True) == table.DEFAULT_RETRY
    assert dataclasses.is_dataclass(table.DEFAULT_RETRY)


def test_response_drop_is_derived_from_the_ops() -> None:
    ops = (table.HeaderOps(remove=(b"server",), set=((b"x-a", b"1"),), add=((b"x-b", b"2"),)),)
    dest = table.Destination(cluster_name="c", cluster=None, response_ops=ops)
    assert dest.response_drop == frozenset({b"server", b"x-a"})
    assert repr(ops[0]) == "HeaderOps(remove=(b'server',), set=((b'x-a', b'1'),), add=((b'x-b', b'2'),))"
    with pytest.raises(TypeError):
        table.Destination(cluster_name="c", cluster=None, response_drop=frozenset())  # type: ignore[call-arg]


def test_pure_twins_import_without_cython_installed() -> None:
    # Cython is a build dependency only: a pure install must not need it at run time.
    code = (
        "import sys; sys.modules['cython'] = None\n"
        "import importlib\n"
        "from fastproxy import _twins, table\n"
        "for name in _twins.PURE_MODE: importlib.import_module(name)\n"
        "assert not any(_twins.compiled_modules().values())\n"
        "d = table.Destination(cluster_name='c', cluster=None, response_ops=(table.HeaderOps(remove=(b'a',)),))\n"
        "assert d.response_drop == frozenset({b'a'})\n"
    )
    env = {**os.environ, "FASTPROXY_NO_EXTENSIONS": "1"}
    env.pop("FASTPROXY_REQUIRE_EXTENSIONS", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
