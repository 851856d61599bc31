"""`hookrelay rotate-key`: re-encrypt every endpoint secret with the current secret key.

Rotate by setting the new key as HOOKRELAY_SECRET_KEY and the old one in
HOOKRELAY_OLD_SECRET_KEYS (every process then reads secrets sealed with either), run this
command, then drop the old key.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from hookrelay.signing.secretbox import SecretBox
from hookrelay.storage.maintenance import Maintenance

log = structlog.get_logger(__name__)

BATCH = 500


async def reseal_all(maintenance: Maintenance, box: SecretBox) -> int:
    """Re-encrypt, with the current key, every secret sealed with another; return how many
    endpoints changed. Safe to run again, and beside a running gateway."""
    resealed = 0
    while True:
        batch = await maintenance.sealed_with_other_keys(box.current_key_id, BATCH)
        if not batch:
            return resealed
        for sealed in batch:
            after = replace(
                sealed,
                secret_ciphertext=box.reseal(
                    sealed.secret_ciphertext, sealed.secret_key_id, sealed.id
                ),
                secret_key_id=box.current_key_id,
            )
            if sealed.previous_secret_ciphertext is not None and sealed.previous_secret_key_id:
                after = replace(
                    after,
                    previous_secret_ciphertext=box.reseal(
                        sealed.previous_secret_ciphertext, sealed.previous_secret_key_id, sealed.id
                    ),
                    previous_secret_key_id=box.current_key_id,
                )
            if await maintenance.reseal(sealed, after):
                resealed += 1
        log.info("endpoint secrets re-encrypted", so_far=resealed)
