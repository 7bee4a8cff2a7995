"""Metrics shared by every experiment: arrays in, floats or small dicts out."""
