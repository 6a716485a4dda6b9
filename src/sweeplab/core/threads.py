"""Thread limits for a run: torch's intra-op pool and the BLAS/OpenMP pools.

The studies' models are small, so a run is fastest on one thread; extra threads only
spin and, when several runs share the cores, oversubscribe them (a 2-core machine ran a
1000-epoch implicit-bias run ~10x slower with 2 torch threads while another process
was busy). Parallelism belongs across runs (grids), not inside them.
"""

from __future__ import annotations

import os
import sys


def limit_threads(n: int) -> None:
    """Use at most ``n`` threads in torch, OpenMP and BLAS from now on in this process."""
    n = max(1, int(n))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, env vars only
        pass
    if "torch" in sys.modules or _importable("torch"):
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None
