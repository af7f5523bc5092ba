"""InfluxQL, InfluxDB 1.x's query language: scanner, syntax tree, parser (no HTTP, WAMP or Twisted here)."""
