"""Device catalog: one YAML file per device (see profiles/catalog.py); a package so the files ship in wheels."""
