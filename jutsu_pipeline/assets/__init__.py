"""Assets, one package per domain."""
