"""astroportal: a generic astronomy portal with a SkyPortal-compatible REST API."""

__version__ = "1.0.0"
