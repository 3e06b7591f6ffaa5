"""The `corpus` command: a thin typer layer over the library, and all of its display code.

Each command builds :class:`Settings`, reads its defaults and help from the library's options
dataclasses, and calls one library function. Expected errors (:class:`CorpusError` with ``expected``)
become one line on stderr and a non-zero exit here, and only here.
"""

from . import collect, dataset, learn, site  # noqa: F401 - each registers its commands on the app
from .app import CorpusGroup, app, db_app, reflow_help, replica_app

reflow_help(app, db_app, replica_app)

__all__ = ["CorpusGroup", "app"]
