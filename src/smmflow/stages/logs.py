"""The one logging set-up of the workflow scripts: everything a job prints goes to its rule log.

``rule_log(snakemake)`` opens ``snakemake.log[0]`` (mode ``w``: a rerun of a job replaces its log)
and points the process's file descriptors 1 and 2 at it, so Python tracebacks, ``warnings``, and the
output of PySCF, RDKit, tblite and torch (C and Fortran code included) land in ``logs/``; the
``logging`` root logger writes there too, in one format.
"""

from __future__ import annotations

import logging
import os
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def rule_log(snakemake, level: int = logging.INFO) -> logging.Logger:
    """Send stdout, stderr and ``logging`` of this script's process to the rule's log file.

    Returns the logger named after the rule. Call it first in every workflow script.
    """
    path = snakemake.log[0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # line-buffered text streams on the redirected descriptors (Python's own tracebacks go to fd 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    logging.basicConfig(stream=sys.stderr, level=level, format=LOG_FORMAT, force=True)
    logging.captureWarnings(True)
    return logging.getLogger(getattr(snakemake, "rule", None) or "smmflow")
