"""A fake Google Workspace over HTTPS: the OAuth token endpoint, Calendar API v3 and Gmail API,
answering as Google does (``server.GoogleServer``)."""
