"""The .g3 housekeeping archive: its frame layout, a writer, the index, the scanner and the reader."""
