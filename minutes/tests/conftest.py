# The fixtures of the voice gateway's tests: the scripted model with Koe's settings pointed at
# it, and the closing of the worker threads' database connections.
from voice.tests.conftest import close_db_connections_of_worker_threads  # noqa: F401
from voice.tests.test_consumers import fake  # noqa: F401
