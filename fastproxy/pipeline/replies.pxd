# Types for compiling replies.py with Cython (pure-Python mode); replies.py stays its own pure twin.

from fastproxy._clock cimport wall_second as _c_wall_second

cdef dict _REASONS, _STATUS_LINES
cdef tuple _CONTENT_LENGTH

cpdef bytes status_line(long status)
cpdef bytes content_length_line(long long n)


cdef class DateHeader:
    cdef long _second
    cdef bytes _line
    cpdef bytes line(self)
