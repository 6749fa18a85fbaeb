import surrogate  # noqa: F401  (first: sets the host device count before jax is imported)
