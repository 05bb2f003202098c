"""Training of the projection heads: a small library, separate from the jobs that run it."""
