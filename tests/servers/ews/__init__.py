"""A protocol-level fake Exchange (EWS over SOAP/HTTP) that exchangelib talks to for real."""

from tests.servers.ews.schema import EwsSchema, load_schema
from tests.servers.ews.server import EwsServer

__all__ = ["EwsSchema", "EwsServer", "load_schema"]
