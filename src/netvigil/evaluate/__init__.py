"""`netvigil evaluate`: score verdicts and incidents against labelled sets."""
