"""Where a sweep's study lives: an Optuna ``RDBStorage`` with heartbeats and retries of stale trials.

Default: SQLite in the sweep's folder, ``sqlite:///<log_root>/<sweep>/optuna.db`` (enough for the workers of one
machine); several machines share a server database, e.g. ``postgresql+psycopg2://user@host/db``. Heartbeats
(``heartbeat_interval``) mark a trial whose worker died (``grace_period`` without a beat) as failed, and
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback` queues it again (at most ``max_retries`` times).
Relies on Optuna 5's (5.0, 5.1) ``RDBStorage(heartbeat_interval, grace_period, heartbeat_stale_trial_callback)``;
Optuna's journal storage has no heartbeats, hence RDB.
"""

from __future__ import annotations

import os
import warnings

from spikegrad.errors import UsageError

__all__ = ["default_url", "open_storage"]

VALID_URLS = "sqlite:///FILE, postgresql+psycopg2://USER@HOST/DB, mysql+pymysql://... (an SQLAlchemy URL)"


def default_url(folder: str) -> str:
    return f"sqlite:///{os.path.abspath(os.path.join(folder, 'optuna.db'))}"


def open_storage(url: str, heartbeat_interval: int, grace_period: int, max_retries: int):
    """An ``RDBStorage`` for ``url`` (tables created on first use); an unreachable or malformed URL is a
    :class:`UsageError` before any training."""
    import optuna

    if "://" not in url:
        raise UsageError(f"storage {url!r} is not a database URL; valid values: {VALID_URLS}")
    if url.startswith("postgresql://"):  # the driver installed with spikegrad[dev]; SQLAlchemy 2 would pick psycopg 3
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        folder = os.path.dirname(os.path.abspath(url.removeprefix("sqlite:///")))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise UsageError(f"storage {url}: cannot create {folder} ({error.strerror})") from None
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=max_retries),
            )
        except Exception as error:  # sqlalchemy's connection errors, a missing driver, a malformed URL
            cause = error.__cause__ or error
            reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise UsageError(f"storage {url}: cannot open the database ({reason}); valid values: {VALID_URLS}") \
                from None
