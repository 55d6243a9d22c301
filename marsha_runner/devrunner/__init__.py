"""A development runner: the project's own PeerTube runner client, for local use and tests."""
