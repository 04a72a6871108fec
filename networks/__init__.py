"""xbar.networks: hybrid CMOS-memristor neurosynaptic cores (layer above ``xbar``).

This layer is not built yet; the package exists so that the distribution installs
all four import packages of the design.
"""
