"""Gravitational-wave and GRB events: GCN notices, sky maps, their storage (generic, any collaboration)."""
