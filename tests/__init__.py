"""meio test suite."""
