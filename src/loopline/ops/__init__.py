"""Operations: capacity and cost plans from measured benchmarks, latency/quality/cost
trade-offs, batch scoring into a database, and model CI."""
