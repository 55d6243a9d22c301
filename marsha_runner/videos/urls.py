"""Video API routes."""

from django.urls import path

from . import api

urlpatterns = [
    path("api/videos/", api.VideoCreateApi.as_view(), name="video-create"),
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
]
