"""The shipped policy versions, one TOML file each (package data; see policyfile.py)."""
