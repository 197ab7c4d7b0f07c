# The compiled Writer's C interface (fastproxy/_wire.pyx), cimported by the compiled
# connection protocols so their writes are C calls.

cdef class Writer:
    cdef readonly object transport
    cdef int _fd  # -1: every write goes through the transport
    cdef bint _held  # the transport was handed bytes it may still hold
    cdef object _is_closing  # transport.is_closing, looked up once
    cpdef write(self, data)
    cpdef writelines(self, list pieces)


cpdef int socket_fd(transport) except -2
