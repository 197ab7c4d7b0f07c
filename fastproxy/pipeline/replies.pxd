# Types for compiling replies.py with Cython (pure-Python mode); replies.py stays its own pure twin.

cdef dict _REASONS, _STATUS_LINES

cpdef bytes status_line(long status)


cdef class DateHeader:
    cdef long _second
    cdef bytes _line
    cpdef bytes line(self)
