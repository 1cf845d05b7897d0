"""One class per physical thing, all behind the small protocols in `base`."""
