"""Video API routes."""

from django.urls import path, re_path

from . import api

urlpatterns = [
    path("api/videos/", api.VideoListCreateApi.as_view(), name="video-list"),
    path("api/videos/<uuid:video_id>/", api.VideoDetailApi.as_view(), name="video-detail"),
    path(
        "api/videos/<uuid:video_id>/initiate-upload/",
        api.VideoInitiateUploadApi.as_view(),
        name="video-initiate-upload",
    ),
    path(
        "api/videos/<uuid:video_id>/upload-ended/",
        api.VideoUploadEndedApi.as_view(),
        name="video-upload-ended",
    ),
    path(
        "api/videos/<uuid:video_id>/hls/<str:token>/<path:path>",
        api.video_hls_playlist,
        name="video-hls",
    ),
    # Last: a malformed id or an unknown path answers the API's JSON 404, not Django's page.
    re_path(r"^api/videos/", api.VideoApiNotFound.as_view(), name="video-not-found"),
]
