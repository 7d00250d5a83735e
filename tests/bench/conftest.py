"""The dashboard tests' database fixtures, for the seeding and timing tests of the benchmark."""

from tests.dash_app.conftest import db_url, reader

__all__ = ["db_url", "reader"]
