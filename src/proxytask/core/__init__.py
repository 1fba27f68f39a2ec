"""The core every layer stands on: storage, layout, clock, errors, options, spaces, proxies."""
