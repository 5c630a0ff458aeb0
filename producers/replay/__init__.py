"""`musicbox replay`: raw logs into Kafka in event-time order, with day ticks, resumable."""
