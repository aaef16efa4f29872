"""Corporate actions: the record (splits, dividends), where it comes from, and inference from adj_close."""
