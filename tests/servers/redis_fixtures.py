"""pytest plugin: a real redis-server for the test session (filled in by the Redis jobs work)."""
