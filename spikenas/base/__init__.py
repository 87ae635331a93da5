"""The floor every part stands on: the error type, units, atomic files, run directories and the allocator."""
