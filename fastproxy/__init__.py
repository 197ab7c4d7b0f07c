"""fastproxy: Istio traffic-management config, served by a fast HTTP/1.1 proxy."""

__version__ = "0.1.0"
__all__ = ["__version__"]
