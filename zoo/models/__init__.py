"""Plain torch.nn architectures, one family per file; each registers its builders."""
