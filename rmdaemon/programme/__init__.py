"""The programme's domain: series and sessions, pair state, answers, health and metrics, and
the send-exactly-once protocol. Jobs call these; nothing here runs on its own."""
