from voice.tests.conftest import close_db_connections_of_worker_threads  # noqa: F401
