"""Benchmarks: the stack side by side with what Django users run today.

Run ``python -m benchmarks`` (see ``benchmarks/README.md``). Modules: ``apps`` (every
configuration), ``driver`` (the in-process server stand-in), ``inprocess``, ``e2e``
(uvicorn + wrk), ``report`` (targets, tables, plots), ``runner`` (one whole run).
"""
