"""Device layer: serial link, protocol codecs (sans-I/O) and the registry. Never imports Qt."""
