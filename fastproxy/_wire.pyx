# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled writer of a connection's outgoing bytes (pure twin: fastproxy/_wire_py.py).

API and the rules it keeps are documented in fastproxy/wire.py.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.errno cimport EINTR, errno
from libc.string cimport memset

__all__ = ["Writer"]


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len


cdef extern from "<sys/socket.h>" nogil:
    struct msghdr:
        void* msg_name
        unsigned int msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t sendmsg(int fd, const msghdr* msg, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


# Pieces one writelines call sends in one sendmsg; longer lists are joined.
DEF MAX_PIECES = 16


cdef class Writer:
    """Writes go to the socket in one send() while the transport holds nothing back."""

    # fields: fastproxy/_wire.pxd

    def __init__(self, transport):
        self.transport = transport
        self._fd = socket_fd(transport)
        self._held = False
        # Bound once: each socket write asks it, and a method lookup per call
        # costs more than the call.  Without a socket no write asks.
        self._is_closing = transport.is_closing if self._fd >= 0 else None

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
        if self._is_closing():
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

    cpdef writelines(self, list pieces):
        """write(b"".join(pieces)), without the join when the pieces go to the socket."""
        cdef object transport = self.transport
        cdef iovec iov[MAX_PIECES]
        cdef msghdr msg
        cdef Py_ssize_t n = PyList_GET_SIZE(pieces), i, total = 0, sent, size
        cdef object piece
        if self._fd < 0 or n > MAX_PIECES or self._held or self._is_closing():
            self.write(b"".join(pieces))
            return
        for i in range(n):
            piece = <object>PyList_GET_ITEM(pieces, i)
            if type(piece) is not bytes:
                self.write(b"".join(pieces))
                return
            iov[i].iov_base = PyBytes_AS_STRING(piece)
            iov[i].iov_len = <size_t>PyBytes_GET_SIZE(piece)
            total += PyBytes_GET_SIZE(piece)
        if total == 0:
            return
        memset(&msg, 0, sizeof(msg))
        msg.msg_iov = iov
        msg.msg_iovlen = <size_t>n
        sent = sendmsg(self._fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
        while sent < 0 and errno == EINTR:
            sent = sendmsg(self._fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
        if sent == total:
            return
        self._held = True
        if sent <= 0:
            transport.write(b"".join(pieces))
            return
        rest = []
        for i in range(n):
            piece = <object>PyList_GET_ITEM(pieces, i)
            size = PyBytes_GET_SIZE(piece)
            if sent >= size:
                sent -= size
                continue
            rest.append(piece[sent:] if sent else piece)
            sent = 0
        transport.write(b"".join(rest))


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
