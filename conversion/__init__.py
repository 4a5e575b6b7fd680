"""Conversion between the original ELMo formats and this package."""
