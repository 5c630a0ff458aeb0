"""Synthetic Music Box logs in the real raw format, calibrated to the study's shape (`musicbox generate`).

The real logs are gone; this package is how users and tests get data. It writes day files
(`YYYYMMDD_<k>_<type>.log[.gz|.tar.gz]`) from a latent per-user process (engagement that
decays, a hazard of leaving for good), with the dirt of the real dumps injected at known
rates and tallied in `manifest.json`.
"""
