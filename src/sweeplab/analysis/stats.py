"""The Student-t interval of a mean, shared by the analysis tables and the agent's scores.

For n i.i.d. normal samples of unknown variance with mean ``m`` and sample standard
deviation ``s`` (ddof=1), the exact confidence interval of the mean at level ``c`` is

    m +- t_{(1+c)/2, n-1} * s / sqrt(n)

(Student, "The probable error of a mean", Biometrika 6(1), 1908). With n < 2 there is
no spread to estimate: the interval is NaN. It lives in ``analysis`` so that both
:mod:`sweeplab.analysis.aggregate` and :mod:`sweeplab.agent.metrics` use this one
formula (``agent`` may import ``analysis``; ``core`` may not).

The quantile is ``scipy.special.stdtrit(n - 1, (1 + c) / 2)``, the function
``scipy.stats.t.ppf`` itself calls, so the values are the same to the bit; importing
``scipy.stats`` for it cost the analysis ~0.4 s (issue 17).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import stdtrit

CONFIDENCE = 0.95


def t_interval(mean: ArrayLike, std: ArrayLike, n: ArrayLike,
               confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``: the Student-t interval of the mean, elementwise; NaN where n < 2.

    Arguments broadcast (scalars give 0-d arrays); ``std`` is the sample standard
    deviation (ddof=1) of the ``n`` values whose mean is ``mean``.
    """
    mean, std, n = np.broadcast_arrays(np.asarray(mean, dtype=np.float64),
                                       np.asarray(std, dtype=np.float64),
                                       np.asarray(n, dtype=np.float64))
    ok = n >= 2
    half = np.full(n.shape, np.nan)
    half[ok] = stdtrit(n[ok] - 1, (1 + confidence) / 2) * std[ok] / np.sqrt(n[ok])
    return mean - half, mean + half
