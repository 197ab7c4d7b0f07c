# Types for compiling pool.py with Cython (pure-Python mode); pool.py stays its own pure twin.

cdef class Pool:
    cdef public object address, idle, loop, parser_cls
    cdef public long port, busy, connecting, generation
    cdef public double idle_timeout
    cdef public bint closed
    cpdef take_idle(self)
    cpdef release(self, conn, bint reusable)
    cpdef discard(self, conn)
    cpdef lost_busy(self)
