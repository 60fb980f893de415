"""Your versions of the project's key functions: one file per exercise (see exercises/README.md)."""
