"""fastproxy: Istio traffic-management config, served by a fast HTTP/1.1 proxy."""

import os
import sys

from fastproxy._twins import PURE_MODE, SourceTwins

__version__ = "0.1.0"
__all__ = ["PURE_MODE", "__version__"]

if os.environ.get("FASTPROXY_NO_EXTENSIONS"):
    # The hot-path modules compiled from their own .py source load from that
    # source instead: it is their pure twin.
    sys.meta_path.insert(0, SourceTwins())
