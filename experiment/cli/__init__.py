"""``slapos experiment …``: one command per file (`up`, `status`, `collect`, `down`)."""
