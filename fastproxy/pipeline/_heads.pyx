# cython: language_level=3, boundscheck=False, wraparound=False
"""Header blocks of the heads we write, compiled; pure twin: _heads_py.py.

The blocks are built in two passes over the header list (measure, then copy
into one bytes object), so a head costs one allocation instead of a list of
pieces joined at the end.  API in fastproxy/pipeline/heads.py.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLongMask
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.string cimport memcmp, memcpy

from fastproxy.pipeline._heads_py import (
    CONNECTION,
    HAS_REQUEST_ID,
    HAS_XFP,
    HEADER_ACTION,
    REQUEST_ID,
    SKIP,
    XFF,
    XFP,
)
from fastproxy.pipeline.headers import RESPONSE_SKIP

cdef dict _ACTION = HEADER_ACTION
cdef frozenset _RESPONSE_SKIP = RESPONSE_SKIP
cdef long _SKIP = SKIP, _CONNECTION = CONNECTION, _XFP = XFP, _XFF = XFF, _REQUEST_ID = REQUEST_ID
cdef long _HAS_XFP = HAS_XFP, _HAS_REQUEST_ID = HAS_REQUEST_ID
cdef bytes _HEX = b"0123456789abcdef"


cdef bytes _render(list headers, unsigned char* keep, Py_ssize_t count):
    """`name: value\\r\\n` for every header i with keep[i], in one bytes object."""
    cdef Py_ssize_t i, total = 0, ln, lv
    cdef object h
    cdef bytes name, value, out
    cdef char* o
    for i in range(count):
        if keep[i]:
            h = <object>PyList_GET_ITEM(headers, i)
            total += PyBytes_GET_SIZE(<bytes>PyTuple_GET_ITEM(h, 0)) + PyBytes_GET_SIZE(<bytes>PyTuple_GET_ITEM(h, 1)) + 4
    out = PyBytes_FromStringAndSize(NULL, total)
    o = PyBytes_AS_STRING(out)
    for i in range(count):
        if keep[i]:
            h = <object>PyList_GET_ITEM(headers, i)
            name = <bytes>PyTuple_GET_ITEM(h, 0)
            value = <bytes>PyTuple_GET_ITEM(h, 1)
            ln = PyBytes_GET_SIZE(name)
            lv = PyBytes_GET_SIZE(value)
            memcpy(o, PyBytes_AS_STRING(name), ln)
            o[ln] = 58  # ":"
            o[ln + 1] = 32
            memcpy(o + ln + 2, PyBytes_AS_STRING(value), lv)
            o[ln + 2 + lv] = 13
            o[ln + 3 + lv] = 10
            o += ln + lv + 4
    return out


cdef tuple _classify(list headers, bint gateway, unsigned char* keep):
    """Mark in `keep` the headers that go up as they are; (flags, xff, connection, upgrade)."""
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef long flags = 0, action
    cdef PyObject* found
    cdef object h
    cdef bytes name, value
    xff = conn = upgrade = None
    for i in range(count):
        h = <object>PyList_GET_ITEM(headers, i)
        name = <bytes>PyTuple_GET_ITEM(h, 0)
        keep[i] = 0
        found = PyDict_GetItem(_ACTION, name)
        if found == NULL:
            if gateway and PyBytes_GET_SIZE(name) >= 8 and memcmp(PyBytes_AS_STRING(name), b"x-envoy-", 8) == 0:
                continue
        else:
            action = <long><object>found
            value = <bytes>PyTuple_GET_ITEM(h, 1)
            if action == _SKIP:
                continue
            if action == _CONNECTION:
                conn = value if conn is None else conn + b"," + value
                continue
            if action == _XFP:
                if gateway:
                    continue
                flags |= _HAS_XFP
            elif action == _REQUEST_ID:
                flags |= _HAS_REQUEST_ID
            elif action == _XFF:
                if gateway:
                    xff = value if xff is None else xff + b"," + value
                    continue
            else:  # upgrade
                upgrade = value
                continue
        keep[i] = 1
    return flags, xff, conn, upgrade


def request_block(list headers, bint gateway):
    cdef Py_ssize_t count = PyList_GET_SIZE(headers)
    cdef unsigned char stack_keep[128]
    cdef bytearray heap_keep = None
    cdef unsigned char* keep = stack_keep
    if count > 128:
        heap_keep = bytearray(count)
        keep = <unsigned char*><char*>heap_keep
    flags, xff, conn, upgrade = _classify(headers, gateway, keep)
    return _render(headers, keep, count), flags, xff, conn, upgrade


def request_kept(list headers, bint gateway):
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef bytearray keep = bytearray(count)
    cdef unsigned char* k = <unsigned char*><char*>keep
    flags, xff, conn, upgrade = _classify(headers, gateway, k)
    return [<object>PyList_GET_ITEM(headers, i) for i in range(count) if k[i]], flags, xff, conn, upgrade


def response_block(list headers, frozenset drop):
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef unsigned char stack_keep[128]
    cdef bytearray heap_keep = None
    cdef unsigned char* keep = stack_keep
    cdef bint has_date = False
    cdef object h
    cdef bytes name
    if count > 128:
        heap_keep = bytearray(count)
        keep = <unsigned char*><char*>heap_keep
    for i in range(count):
        h = <object>PyList_GET_ITEM(headers, i)
        name = <bytes>PyTuple_GET_ITEM(h, 0)
        if name in _RESPONSE_SKIP:
            keep[i] = 0
            continue
        if PyBytes_GET_SIZE(name) == 4 and memcmp(PyBytes_AS_STRING(name), b"date", 4) == 0:
            has_date = True
        keep[i] = not (drop and name in drop)
    return _render(headers, keep, count), has_date


cdef int _UUID_POS[32]  # where each of the 32 hex digits goes in the 36-byte text


cdef void _fill_uuid_pos():
    cdef int i, k = 0
    for i in range(32):
        if i == 8 or i == 12 or i == 16 or i == 20:
            k += 1  # a dash
        _UUID_POS[i] = k
        k += 1


_fill_uuid_pos()


def request_id(bits):
    """A version-4 UUID (RFC 4122) from 128 random bits."""
    # Mask, not convert: no intermediate 64-bit Python ints.
    cdef unsigned long long lo = PyLong_AsUnsignedLongLongMask(bits)
    cdef unsigned long long hi = PyLong_AsUnsignedLongLongMask(bits >> 64)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 36)
    cdef char* o = PyBytes_AS_STRING(out)
    cdef const char* hexd = PyBytes_AS_STRING(_HEX)
    cdef int i
    hi = (hi & ~(<unsigned long long>0xF000)) | 0x4000
    lo = (lo & ~(<unsigned long long>0xC000 << 48)) | (<unsigned long long>0x8000 << 48)
    for i in range(16):
        o[_UUID_POS[i]] = hexd[(hi >> (60 - 4 * i)) & 0xF]
        o[_UUID_POS[16 + i]] = hexd[(lo >> (60 - 4 * i)) & 0xF]
    o[8] = o[13] = o[18] = o[23] = 45  # "-"
    return out
