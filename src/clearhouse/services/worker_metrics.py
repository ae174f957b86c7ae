"""The metrics directory that the workers of one ``clearhouse serve`` share.

With more than one worker, prometheus_client's multiprocess mode keeps each worker's figures
in files of a directory named by ``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` sums them
(``services/metrics.py``). The directory is the serve run's own: made fresh and private
(mode 0700) before the workers start, so no figures of an earlier run are added in, and
removed when the server has stopped. It is set in the environment here, in the parent, which
never imports the metrics: prometheus_client decides at import whether to keep its values in
files, and each worker, a fresh interpreter, inherits the variable before it imports anything.

A worker that dies is replaced by uvicorn, which offers no hook to call
``multiprocess.mark_process_dead``; none is needed, as no metric is a gauge of live processes.
The dead worker's files stay and its counts keep adding to the totals, as counters must.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

MULTIPROCESS_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's name for the directory; ``services/metrics.py`` reads it."""


@contextmanager
def shared_by_workers() -> Iterator[Path]:
    """A fresh metrics directory in the environment of the workers started inside."""
    directory = tempfile.mkdtemp(prefix="clearhouse-metrics-")
    outer = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
    try:
        yield Path(directory)
    finally:
        if outer is None:
            del os.environ[MULTIPROCESS_DIR_VARIABLE]
        else:
            os.environ[MULTIPROCESS_DIR_VARIABLE] = outer
        shutil.rmtree(directory)
