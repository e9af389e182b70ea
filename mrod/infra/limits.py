"""Hard limits, in one place. Defaults an operator may change live in mrod/infra/config/schema.py."""

# DNS: RFC 1035 / RFC 5321
MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_LOCAL_PART_LENGTH = 64
# RFC 5321 path limit is 256 octets incl. <>; addresses we store stay under it.
MAX_ADDRESS_LENGTH = 254

# lookupd wire limits
MAX_REQUEST_BYTES = 10_000        # socketmap payload / tcp_table line (Postfix 3.12 uses 10000)
SOCKETMAP_MAX_REPLY = 100_000     # Postfix 3.7 refuses larger replies
TCP_TABLE_MAX_REPLY = 4096        # incl. the newline
TEMP_REASON_MAX = 200             # Postfix logs at most 200 chars of a TEMP reason

# free-text fields
MAX_NAME_LENGTH = 64              # relay and user names
