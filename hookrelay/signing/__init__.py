"""Signing: Standard Webhooks signatures (`webhooks`), endpoint secrets encrypted at rest
(`secretbox`), and re-encrypting them under a new key (`rekey`)."""
