"""The proxy's catalog file is owner-only: the check is shared with the master (`slap.catalog_file`)."""
from __future__ import annotations

from partita.slap.catalog_file import private_umask, secure_catalog, sqlite_path

__all__ = ["private_umask", "secure_catalog", "sqlite_path"]
