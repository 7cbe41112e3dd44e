"""smmflow: ligand design for Dy(III) single-molecule magnets.

The science lives in layered subpackages; a package imports only the ones listed above it
(``tests/test_layers.py`` enforces the order and the absence of import cycles):

- base modules: :mod:`smmflow.constants` (physical constants and reference numbers),
  :mod:`smmflow.tables` (column contracts of every table), :mod:`smmflow.io` (atomic writes, table
  I/O), :mod:`smmflow.config` (config schema validation), :mod:`smmflow.native_blas` (BLAS kernel
  choice for PySCF's bundled OpenBLAS)
- :mod:`smmflow.chem`      donor sites and ligand ids, stability rules, SMILES sources, enumeration,
  the random molecule grower, ligand conformers
- :mod:`smmflow.geometry`  the [Dy(H2O)5L2] geometry contract (atom order, donors, extxyz), the
  builder and structural descriptors
- :mod:`smmflow.xtb`       GFN2-xTB engine, constrained relaxations, the proxy table, DFT proxies
- :mod:`smmflow.abinitio`  SA-CASSCF(9,7) + spin-orbit engine: settings, quantum regions, basis,
  low-rank DF, solvers, free-ion reference, start orbitals, spin-orbit, magnetism
- :mod:`smmflow.ml`        tokenizer, VAE (model, trainer), KD heads (ensemble, graph), data,
  metrics, generation, learning curve, published benchmark
- :mod:`smmflow.stages`    the table-to-table functions the workflow scripts call
- :mod:`smmflow.cli`       the ``smmflow`` command line
"""

__version__ = "0.1.0"
