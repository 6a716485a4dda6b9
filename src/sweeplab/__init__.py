"""sweeplab: typed, parallel, resumable ML research experiments.

Public API of the foundation: run directories and files (``make_experiment_dir``,
``save_json``, ``save_yaml``, ``set_seeds``), study registration (``register_study``,
``RunContext``, ``StudyConfig``) and the errors.
"""

from sweeplab.core.config import StudyConfig
from sweeplab.core.context import RunContext
from sweeplab.core.experiment import make_experiment_dir, save_json, save_yaml, set_seeds
from sweeplab.core.registry import get_study, register_study
from sweeplab.errors import ConfigError, SweeplabError

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "RunContext", "StudyConfig", "SweeplabError", "get_study",
    "make_experiment_dir", "register_study", "save_json", "save_yaml", "set_seeds",
]
