"""A protocol-level fake Microsoft 365 (identity platform + Graph v1.0 over HTTPS) that msal and
requests talk to for real; tests only change the backend's authority_host, graph_base and ca_file."""

from tests.servers.graph.server import GraphServer

__all__ = ["GraphServer"]
