"""Optional layers built on the public names of middleware_stack: timing, CORS, auth."""
