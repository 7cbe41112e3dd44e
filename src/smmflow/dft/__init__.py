"""DFT geometries of [Dy(H2O)5L2] (PySCF, Dy(III) with its 4f shell in a large-core ECP)."""
