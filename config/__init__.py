"""Configuration: the one Settings class; every ECOMRISK_* variable is read there and nowhere else."""
