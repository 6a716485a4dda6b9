"""Which experiment trackers (wandb, MLflow) a run or grid reports to, and their set-up.

:class:`TrackingConfig` is plain frozen data: it crosses process boundaries to worker
processes and Slurm jobs as it is (pickled), so it holds names and paths, never a client.
:func:`prepare_tracking` runs once, in the parent process, before any run starts: it
resolves every default (so each worker sees the same values), probes what can be
probed, and creates the MLflow experiment once, so parallel workers never race to create
it and the SQLite schema migration runs once. A tracker that cannot be prepared is
switched off with one warning: the runs go on with their local files, which are the
source of truth anyway.
"""

from __future__ import annotations

import importlib.util
import netrc
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from sweeplab.errors import ConfigError

WANDB_MODES = ("online", "offline", "disabled")
"""Accepted values of ``wandb_mode`` (``None`` means: decide automatically)."""

WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}
"""Legacy values wandb itself still accepts in ``WANDB_MODE``."""

WANDB_DEFAULT_HOST = "https://api.wandb.ai"
PROBE_TIMEOUT_S = 2.0
"""How long the parent waits for a TCP connection to the wandb server before going offline."""

MLFLOW_DEFAULT_URI = "default"
"""``mlflow_uri`` value meaning: a SQLite file ``mlflow.db`` in the runs directory."""


@dataclass(frozen=True)
class TrackingConfig:
    """Where a run's metrics go besides its local files.

    wandb is on when ``wandb_project`` is set (and ``wandb_mode`` is not ``"disabled"``);
    MLflow is on when ``mlflow_uri`` is set. ``group`` (a grid's name) becomes the wandb
    group and an MLflow tag, so a grid's runs can be told apart from other grids'.
    """

    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_mode: str | None = None
    """``"online"``, ``"offline"``, ``"disabled"`` or ``None`` (auto: see prepare_tracking)."""
    wandb_dir: str | None = None
    """Folder handed to ``wandb.init(dir=...)``; wandb writes its run folders in
    ``<wandb_dir>/wandb/``. Default: ``$WANDB_DIR``, else ``<runs dir>/wandb``."""
    mlflow_uri: str | None = None
    """``None``: off; ``"default"``: ``sqlite:///<runs dir>/mlflow.db``; else any MLflow
    tracking URI (``http://host:5000``, ``sqlite:///path.db``, ...)."""
    mlflow_experiment: str | None = None
    """MLflow experiment name; default: the grid/study name given to prepare_tracking."""
    group: str | None = None

    @property
    def wandb_enabled(self) -> bool:
        """Whether runs report to wandb."""
        return bool(self.wandb_project) and self.wandb_mode != "disabled"

    @property
    def mlflow_enabled(self) -> bool:
        """Whether runs report to MLflow."""
        return bool(self.mlflow_uri)

    @property
    def enabled(self) -> bool:
        """Whether any tracker is on."""
        return self.wandb_enabled or self.mlflow_enabled


def check_tracking(tracking: TrackingConfig) -> None:
    """Raise :class:`ConfigError` for a value no tracker could accept."""
    if tracking.wandb_mode is not None and tracking.wandb_mode not in WANDB_MODES:
        raise ConfigError("wandb_mode", tracking.wandb_mode,
                          f"one of {', '.join(WANDB_MODES)} (or unset: automatic)")
    if not tracking.wandb_project and tracking.wandb_entity:
        raise ConfigError("wandb_project", tracking.wandb_project,
                          "a wandb project name is required with wandb_entity")
    if not tracking.wandb_project and tracking.wandb_mode in ("online", "offline"):
        raise ConfigError("wandb_project", tracking.wandb_project,
                          "a wandb project name is required with wandb_mode")
    for key in ("wandb_project", "wandb_dir", "mlflow_uri", "mlflow_experiment"):
        value = getattr(tracking, key)
        if value is not None and not str(value).strip():
            raise ConfigError(key, value, "a non-empty string (or leave it unset)")


def prepare_tracking(
    tracking: TrackingConfig,
    runs_dir: str | Path,
    experiment: str,
    warn: Callable[[str], None],
) -> TrackingConfig:
    """Resolve defaults and set trackers up once, before any run starts.

    - wandb: ``wandb_dir`` defaults to ``$WANDB_DIR``, else ``<runs_dir>/wandb`` (created
      here). ``wandb_mode`` unset means: ``$WANDB_MODE`` if set, else ``"offline"`` when
      the wandb server (``$WANDB_BASE_URL``, default api.wandb.ai:443) accepts no TCP
      connection within 2 s or no API key is configured, else ``"online"``. Falling back
      to offline is said through ``warn`` with the ``wandb sync`` command to upload later.
    - MLflow: ``"default"`` becomes ``sqlite:///<absolute runs_dir>/mlflow.db``;
      ``mlflow_experiment`` defaults to ``experiment``; the experiment is created now
      (for an ``http(s)://`` server, after a 2 s TCP probe: MLflow's own client would
      retry a refused connection for minutes).

    Raises :class:`ConfigError` for a value no tracker accepts (a bad ``wandb_mode``). A
    tracker that cannot be prepared (server down, unwritable folder, package missing)
    is reported once through ``warn`` and comes back off (its field set to ``None``).
    """
    check_tracking(tracking)
    runs_dir = Path(runs_dir).expanduser().resolve()
    if tracking.wandb_enabled:
        tracking = _prepare_wandb(tracking, runs_dir, warn)
    if tracking.mlflow_enabled:
        tracking = _prepare_mlflow(tracking, runs_dir, experiment, warn)
    return tracking


def _prepare_wandb(
    tracking: TrackingConfig, runs_dir: Path, warn: Callable[[str], None]
) -> TrackingConfig:
    off = replace(tracking, wandb_project=None)
    if importlib.util.find_spec("wandb") is None:
        warn("wandb tracking off: the wandb package is not installed "
             "(pip install 'sweeplab[track]')")
        return off
    wandb_dir = Path(tracking.wandb_dir or os.environ.get("WANDB_DIR") or runs_dir / "wandb")
    wandb_dir = wandb_dir.expanduser().resolve()
    try:
        wandb_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=wandb_dir):
            pass
    except OSError as exc:
        warn(f"wandb tracking off: cannot write to {wandb_dir} ({type(exc).__name__}: "
             f"{exc.strerror or exc}); the runs go on with their local files")
        return off
    mode = tracking.wandb_mode or _wandb_mode_from_env()
    if mode is None:
        mode, reason = _auto_wandb_mode()
        if mode == "offline":
            sync_dir = wandb_dir / "wandb"
            warn(f"wandb: {reason}; logging offline to {sync_dir}; "
                 f"upload later with `wandb sync {sync_dir}`")
    return replace(tracking, wandb_dir=str(wandb_dir), wandb_mode=mode)


def _wandb_mode_from_env() -> str | None:
    """``$WANDB_MODE`` validated (legacy aliases mapped), or ``None`` when unset."""
    value = os.environ.get("WANDB_MODE", "").strip()
    if not value:
        return None
    value = WANDB_MODE_ALIASES.get(value, value)
    if value not in WANDB_MODES:
        raise ConfigError("WANDB_MODE", os.environ["WANDB_MODE"],
                          f"one of {', '.join(WANDB_MODES)} (or unset: automatic)")
    return value


def _auto_wandb_mode() -> tuple[str, str]:
    """``("online", "")`` when the wandb server answers and a key is set, else offline + why."""
    base = os.environ.get("WANDB_BASE_URL") or WANDB_DEFAULT_HOST
    url = urlparse(base if "://" in base else f"https://{base}")
    host = url.hostname or "api.wandb.ai"
    port = url.port or (80 if url.scheme == "http" else 443)
    if not can_connect(host, port, PROBE_TIMEOUT_S):
        return "offline", f"{host}:{port} cannot be reached"
    if not _has_wandb_credentials(host):
        return "offline", "no API key is configured (run `wandb login` or set WANDB_API_KEY)"
    return "online", ""


def can_connect(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    Name resolution has no timeout of its own, so the probe runs in a daemon thread and
    the caller waits at most ``timeout`` for it.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="sweeplab-wandb-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _has_wandb_credentials(host: str) -> bool:
    """Whether wandb will find an API key: ``$WANDB_API_KEY``, a token file, or netrc."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _prepare_mlflow(
    tracking: TrackingConfig, runs_dir: Path, experiment: str, warn: Callable[[str], None]
) -> TrackingConfig:
    name = tracking.mlflow_experiment or experiment
    uri = tracking.mlflow_uri
    if uri == MLFLOW_DEFAULT_URI:
        uri = f"sqlite:///{runs_dir / 'mlflow.db'}"
    off = replace(tracking, mlflow_uri=None)
    if importlib.util.find_spec("mlflow") is None:
        warn("mlflow tracking off: the mlflow package is not installed "
             "(pip install 'sweeplab[track]')")
        return off
    server = urlparse(uri)
    if server.scheme in ("http", "https") and server.hostname:
        # MLflow retries a refused connection for minutes; a 2 s probe says it at once
        port = server.port or (443 if server.scheme == "https" else 80)
        if not can_connect(server.hostname, port, PROBE_TIMEOUT_S):
            warn(f"mlflow tracking off: {server.hostname}:{port} cannot be reached; "
                 "the runs go on with their local files")
            return off
    from sweeplab.track.mlflow_sink import ensure_experiment

    try:
        ensure_experiment(uri, name)
    except Exception as exc:  # noqa: BLE001 - any failure of the tracker turns it off
        warn(f"mlflow tracking off: {uri} cannot be prepared ({describe_error(exc)}); "
             "the runs go on with their local files")
        return off
    return replace(tracking, mlflow_uri=uri, mlflow_experiment=name)


def describe_error(exc: BaseException) -> str:
    """One line for a warning: ``Type: message`` and, when the error wraps another, the
    original one too (``MlflowException: ... <- OperationalError: no such table``)."""
    text = f"{type(exc).__name__}: {_first_line(exc, 160)}".rstrip(": ")
    root, seen = exc, {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    if root is not exc:
        line = _first_line(root, 120)
        if line not in text:
            text += f" <- {type(root).__name__}: {line}".rstrip(": ")
    return text


def _first_line(exc: BaseException, limit: int) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
