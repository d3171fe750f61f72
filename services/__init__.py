"""The platform's services; each has the same shape (see docs/architecture.md)."""
