"""The command line interface (it prints; the library logs)."""
