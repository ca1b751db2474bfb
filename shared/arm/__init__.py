"""A small ARM client: HTTPS only, tokens cached, retries that honour Retry-After, sans-IO LRO logic."""

from shared.arm.client import ArmClient, ArmResponse
from shared.arm.errors import ArmError, ForeignOriginError

__all__ = ["ArmClient", "ArmError", "ArmResponse", "ForeignOriginError"]
