"""PostgreSQL backend that starts the embedded server on the first connection.

Settings give only the database name and OPTIONS["data_dir"]; host, port and user come from the
running server, so nothing about the server leaks into settings or needs to be known up front.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.backends.postgresql import base

from portal.embedded_db import embedded_database_ensure, embedded_server_start


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        options = dict(self.settings_dict.get("OPTIONS") or {})
        data_dir = Path(options.pop("data_dir"))
        server = embedded_server_start(data_dir=data_dir)
        name = self.settings_dict["NAME"] or "postgres"
        embedded_database_ensure(server=server, name=name)
        # The parent builds its parameters from settings_dict, so hand it one without our option.
        original = self.settings_dict
        self.settings_dict = {**original, "OPTIONS": options}
        try:
            params = super().get_connection_params()
        finally:
            self.settings_dict = original
        params.update(host=str(server.socket_dir), port=server.port, user="postgres")
        params.pop("password", None)
        return params
