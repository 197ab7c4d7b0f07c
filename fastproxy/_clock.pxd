# The clocks the proxy reads, as C calls for the compiled modules (no module
# behind this file: the functions are inlined where they are cimported).
# They read what Python's time.monotonic() and time.time() read on Linux
# (clock_gettime with CLOCK_MONOTONIC / CLOCK_REALTIME), so a compiled module
# and its pure twin, which calls those, keep the same clock.

from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec


cdef inline double monotonic() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline long wall_second() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec
