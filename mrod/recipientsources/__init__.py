"""Recipient sources: recipient lists synced from a primary's own directory (LDAP, SQL, a URL)."""
