"""smmflow: ligand design for Dy(III) single-molecule magnets.

The science lives in small modules named after the physics and chemistry:

- :mod:`smmflow.constants`  physical constants and reference numbers (one source of truth)
- :mod:`smmflow.tables`     column contracts of every table the workflow writes
- :mod:`smmflow.io`         atomic writes and table I/O
- :mod:`smmflow.ligands`    donor detection, ligand classes, donor-first SMILES, enumeration
- :mod:`smmflow.complexes`  [Dy(H2O)5L2] pentagonal-bipyramidal complex builder
- :mod:`smmflow.xtb`        GFN2-xTB (tblite) single points and constrained relaxations
- :mod:`smmflow.proxies`    proxy descriptors of free ligands and relaxed complexes
"""

__version__ = "0.1.0"
