"""One module per area of the pipeline: each builds SQL, asks a backend once, and shapes the answer."""
