"""sisock-http: Grafana's SimpleJSON and JSON datasources, served by CherryPy over one WAMP session."""
