"""The checks of every exercise, one module per part of the course; see exercises.grading."""
