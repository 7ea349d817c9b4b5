"""The database connection pool."""

import os

from psycopg_pool import ConnectionPool

pool = ConnectionPool(os.environ.get("DATABASE_URL", "postgresql://localhost/__entities__"), max_size=10, open=False)
