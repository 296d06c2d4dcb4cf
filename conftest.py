# Repository root on sys.path for `pytest` runs from the root (packages are imported as top-level).
