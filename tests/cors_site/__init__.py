"""A small Django site served under uvicorn for the real-browser CORS test."""
