# Stage "ligands": donor-first monodentate ligands (O, N, O-, N-) from the shipped source library,
# the user's SMILES files and the seeded molecule generator (smmflow.chem, smmflow.chem.grower).
# Runtime: ~1 min per 15 000 generated molecules on one core; margin, doubled per retry.


rule enumerate_ligands:
    input:
        smiles=[*config["ligands"]["source_files"], *config["ligands"]["user_smiles"]],
    output:
        ligands=R("ligands/ligands.parquet"),
        rejected=R("ligands/rejected.tsv"),
    params:
        ligands=config["ligands"],
    log:
        R("logs/enumerate_ligands/enumerate_ligands.log"),
    benchmark:
        R("benchmarks/enumerate_ligands/enumerate_ligands.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wc, attempt: attempt
        * (10 + config["ligands"]["generator"]["n_molecules"] // 3000),
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/enumerate_ligands.py"


register_target("ligands", R("ligands/ligands.parquet"), R("ligands/rejected.tsv"))
