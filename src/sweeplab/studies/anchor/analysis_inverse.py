"""``inverse-sequence``'s analysis (defined with the composite one in ``analysis``)."""

from sweeplab.studies.anchor.analysis import INVERSE_ANALYSIS as ANALYSIS

__all__ = ["ANALYSIS"]
