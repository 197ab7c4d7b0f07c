# Types for compiling headers.py with Cython (pure-Python mode); headers.py stays its own pure twin.

cpdef render(headers, list out)
