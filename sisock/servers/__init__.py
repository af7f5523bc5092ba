"""Data node servers: one module each."""
