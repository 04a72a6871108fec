"""xbar.learning: device-aware STDP and surrogate-gradient training (top layer).

This layer is not built yet; the package exists so that the distribution installs
all four import packages of the design.
"""
