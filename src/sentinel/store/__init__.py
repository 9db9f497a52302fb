"""Storage: connection handling, migrations, the readings store and repositories, the embedded server."""
