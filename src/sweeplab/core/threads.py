"""Thread limits for a run: torch's intra-op pool and the BLAS/OpenMP pools.

The studies' models are small, so a run is fastest on one thread; extra threads only
spin and, when several runs share the cores, oversubscribe them (a 2-core machine ran a
1000-epoch run of a small network ~10x slower with 2 torch threads while another process
was busy). Parallelism belongs across runs (grids), not inside them.
"""

from __future__ import annotations

import os
import sys


def limit_threads(n: int) -> None:
    """Use at most ``n`` threads in torch, OpenMP and BLAS from now on in this process.

    torch is told directly only when it is imported already; a torch imported later
    reads its thread count from ``OMP_NUM_THREADS``, set here, so a study that never
    uses torch does not pay its import (seconds) for this.
    """
    n = max(1, int(n))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, env vars only
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
