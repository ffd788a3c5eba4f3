"""Protocol-level test servers the suite runs on 127.0.0.1 (EWS today; Graph, IMAP, SMTP later)."""
