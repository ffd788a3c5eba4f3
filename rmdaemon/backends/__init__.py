"""Backends: where mail goes and calendars live. Jobs only see the ``Backend`` protocol."""
