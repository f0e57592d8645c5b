"""Django database backend: PostgreSQL, served by Koe's embedded server (see portal.embedded_db)."""
