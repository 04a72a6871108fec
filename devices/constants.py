"""Physical constants used by the device models (SI units, CODATA 2018 exact values
where the 2019 SI redefinition fixed them).

One definition for the whole project: the device models and the array layer import
them from here.
"""

K_B = 1.380649e-23  # Boltzmann constant [J/K] (exact)
Q_E = 1.602176634e-19  # elementary charge [C] (exact)
H_PLANCK = 6.62607015e-34  # Planck constant [J s] (exact)
EPS0 = 8.8541878128e-12  # vacuum permittivity [F/m] (CODATA 2018)
K_B_EV = K_B / Q_E  # Boltzmann constant [eV/K]

__all__ = ["EPS0", "H_PLANCK", "K_B", "K_B_EV", "Q_E"]
