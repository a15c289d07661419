"""The `sort` command's library: per-face features, orders, best-face selection, identity, renaming."""
