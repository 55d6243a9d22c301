"""Videos: the model, the upload API, the transcoding launch and its completion."""
