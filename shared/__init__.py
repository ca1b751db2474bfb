"""autoprotect's domain core: everything that decides and does, with no dependency on azure.functions."""
