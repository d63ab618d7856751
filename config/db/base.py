"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django checks a reused connection at the start of each request with `SELECT 1`:
one round trip and a query on every API call. A connection that the server has ended (restart, idle
timeout, pg_terminate_backend) is seen without one: PostgreSQL sends a FATAL error and closes the socket,
so an idle connection whose socket is readable is done with. Inside a transaction, or when the socket
cannot be polled, the check is Django's own.
"""

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            return super().is_usable()
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return super().is_usable()
        # Nothing is due from the server on an idle connection (Uptake never LISTENs): pending input is its
        # goodbye, or end of file.
        return not readable
