"""xbar: crossbar arrays of memristive devices (circuit solve, peripherals, programming).

Layers (bottom to top): ``devices`` (one cell's physics) -> ``xbar`` (arrays) ->
``networks`` (neurosynaptic cores) -> ``learning`` (on-chip learning).
"""

__all__ = []
