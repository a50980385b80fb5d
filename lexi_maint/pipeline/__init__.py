"""The document pipeline: parse -> chunk -> analyze -> store, one document per worker process."""
