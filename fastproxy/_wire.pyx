# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled writer of a connection's outgoing bytes (pure twin: fastproxy/_wire_py.py).

API and the rules it keeps are documented in fastproxy/wire.py.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport EINTR, errno

__all__ = ["Writer"]


cdef extern from "<sys/socket.h>" nogil:
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef class Writer:
    """Writes go to the socket in one send() while the transport holds nothing back."""

    cdef readonly object transport
    cdef int _fd  # -1: every write goes through the transport
    cdef bint _held  # the transport was handed bytes it may still hold

    def __init__(self, transport):
        self.transport = transport
        self._fd = socket_fd(transport)
        self._held = False

    cpdef write(self, data):
        cdef object transport = self.transport
        cdef Py_ssize_t n, sent
        if self._fd < 0 or type(data) is not bytes:
            transport.write(data)
            return
        if self._held:
            if transport.get_write_buffer_size():
                transport.write(data)
                return
            self._held = False
        # A closing transport drops what it is given (and its fd may be about
        # to close): only the transport may decide what happens to the bytes.
        if transport.is_closing():
            transport.write(data)
            return
        n = PyBytes_GET_SIZE(data)
        if n == 0:
            return
        sent = send(self._fd, PyBytes_AS_STRING(data), <size_t>n, MSG_DONTWAIT | MSG_NOSIGNAL)
        while sent < 0 and errno == EINTR:
            sent = send(self._fd, PyBytes_AS_STRING(data), <size_t>n, MSG_DONTWAIT | MSG_NOSIGNAL)
        if sent == n:
            return
        # The socket is full or failed: the transport queues the rest (and
        # flow-controls the protocol), or meets the same error and reports it
        # through connection_lost, as a write of its own would.
        self._held = True
        transport.write(data[sent:] if sent > 0 else data)


cpdef int socket_fd(transport) except -2:
    """The fd of a plain TCP or Unix stream transport, -1 for any other (TLS, pipes, test doubles)."""
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    try:
        fd = sock.fileno()
    except (AttributeError, OSError):
        return -1
    return fd if isinstance(fd, int) and fd >= 0 else -1
