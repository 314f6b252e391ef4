"""Methods that fuse weight training and architecture search, written as explicit loops."""
