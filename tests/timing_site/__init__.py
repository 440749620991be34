"""A small Django site for the timing layer: views that add metrics, a route per kind."""
