"""Websockets beside socket.io: the JWT middleware and the video state channel."""
