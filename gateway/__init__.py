"""The merchant REST gateway. Until the gateway issue lands it answers health checks only."""
