"""sisock: a telescope site's housekeeping data, served to Grafana over WAMP."""
__version__ = "0.1.0"
