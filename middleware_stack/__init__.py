"""Declarative, checked pure-ASGI middleware stacks for Django.

Public names only; see ``docs/`` for the contract.
"""

from middleware_stack.builder import Stack, build_stack
from middleware_stack.entries import Layer
from middleware_stack.exceptions import ASGIProtocolError, StackConfigurationError, StackWarning

__version__ = "0.1.0"

__all__ = [
    "ASGIProtocolError",
    "Layer",
    "Stack",
    "StackConfigurationError",
    "StackWarning",
    "build_stack",
]
