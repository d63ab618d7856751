"""analytics models."""
