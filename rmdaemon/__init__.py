"""rmdaemon: runs a reverse-mentoring programme over existing mail and calendar systems."""

__version__ = "0.1.0"
