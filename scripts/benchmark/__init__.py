"""The benchmark against OpenSSH's `ssh -N -R`: the rig, the measurements and the report."""
