"""The venue boundary: Binance JSON is parsed into domain types here and nowhere else."""
