"""Upload API: thin classes that validate, call one service and shape the answer."""

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from marsha_runner.errors import RequestTooLarge, error_responses

from . import hls, selectors
from .constants import SubtitleState, UploadState
from .media_urls import video_urls_for_client
from .models import Video
from .transitions import VideoRefused
from .upload import video_create, video_initiate_upload, video_upload_ended


class CanChangeVideos(BasePermission):
    """Authenticated, with the ``videos.change_video`` permission."""

    message = "You need the permission to change videos."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("videos.change_video"))


@extend_schema_serializer(component_name="Video")
class SubtitleTrackOutputSerializer(serializers.Serializer):
    language = serializers.CharField(allow_null=True, help_text="Null until it is ready.")
    state = serializers.ChoiceField(choices=SubtitleState.choices)
    error_reason = serializers.CharField(allow_blank=True)


class VideoOutputSerializer(serializers.ModelSerializer):
    subtitles = serializers.SerializerMethodField(
        help_text="The transcriptions of the served version with their state (pending, "
        "ready, error with the reason); a ready one's file is in `urls.subtitles`."
    )
    playable = serializers.BooleanField(
        read_only=True,
        help_text="Whether `urls` can be played now: true from the first stored rendition of "
        "a first upload (still `processing`), and while a ready video's new version is "
        "processed (the previous version is served until the new one is complete).",
    )

    class Meta:
        model = Video
        fields = [
            "id",
            "title",
            "upload_state",
            "upload_error_code",
            "upload_error_reason",
            "uploaded_on",
            "transcode_pipeline",
            "storage_location",
            "resolutions",
            "duration",
            "size",
            "urls",
            "subtitles",
            "playable",
            "playable_on",
            "created_on",
            "updated_on",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["urls"] = video_urls_for_client(video=instance)
        return data

    @extend_schema_field(SubtitleTrackOutputSerializer(many=True))
    def get_subtitles(self, video) -> list:
        tracks = selectors.video_subtitle_tracks(video=video)
        return SubtitleTrackOutputSerializer(tracks, many=True).data


UploadOutputSerializer = inline_serializer(
    name="UploadOutput",
    fields={
        "url": serializers.URLField(),
        "fields": serializers.DictField(child=serializers.CharField()),
    },
)


# Our inputs are a few short fields: anything bigger is refused before it is read.
MAX_BODY_SIZE = 64 * 1024


class VideoApiBase(APIView):
    permission_classes = [CanChangeVideos]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_SIZE:
            raise RequestTooLarge(f"The request body is larger than {MAX_BODY_SIZE} bytes.")

    @staticmethod
    def get_video(video_id) -> Video:
        try:
            return selectors.video_get(video_id=video_id)
        except Video.DoesNotExist as err:
            raise NotFound("No such video.") from err

    def call_service(self, service, *, request, video_id):
        """Validate the body, check the video exists, call the service; refusals are 400."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        video = self.get_video(video_id)
        try:
            return service(video_id=video.id, **serializer.validated_data)
        except VideoRefused as err:
            raise ValidationError({err.field: str(err)}) from err


class VideoPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class VideoListCreateApi(VideoApiBase):
    pagination_class = VideoPagination

    class FilterSerializer(serializers.Serializer):
        upload_state = serializers.ListField(
            child=serializers.ChoiceField(choices=UploadState.choices),
            required=False,
            help_text="Only videos in these states (repeat the parameter for several).",
        )
        id = serializers.ListField(
            child=serializers.UUIDField(),
            required=False,
            max_length=100,
            help_text="Only these videos (repeat the parameter, up to 100): poll several at once.",
        )

    @extend_schema_serializer(component_name="VideoCreateInput")
    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=255)

    @extend_schema(
        parameters=[
            FilterSerializer,
            OpenApiParameter("page", int, description="Page number (from 1)."),
            OpenApiParameter("page_size", int, description="Videos per page (20; at most 100)."),
        ],
        responses={
            200: VideoOutputSerializer(many=True),
            **error_responses(400, 401, 403, 404, 405, 503),
        },
    )
    def get(self, request):
        """The videos the caller may see, newest first, one page at a time."""
        query = {key: request.query_params.getlist(key) for key in ("upload_state", "id")}
        filters = self.FilterSerializer(data={k: v for k, v in query.items() if v})
        filters.is_valid(raise_exception=True)
        videos = selectors.video_list(
            upload_states=filters.validated_data.get("upload_state"),
            ids=filters.validated_data.get("id"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(videos, request, view=self)
        return paginator.get_paginated_response(VideoOutputSerializer(page, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: VideoOutputSerializer, **error_responses(400, 401, 403, 405, 413, 503)},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        video = video_create(**serializer.validated_data)
        return Response(VideoOutputSerializer(video).data, status=status.HTTP_201_CREATED)


class VideoDetailApi(VideoApiBase):
    @extend_schema(
        responses={200: VideoOutputSerializer, **error_responses(401, 403, 404, 405, 503)}
    )
    def get(self, request, video_id):
        return Response(VideoOutputSerializer(self.get_video(video_id)).data)


class VideoInitiateUploadApi(VideoApiBase):
    @extend_schema_serializer(component_name="VideoInitiateUploadInput")
    class InputSerializer(serializers.Serializer):
        filename = serializers.CharField(max_length=255)
        mimetype = serializers.CharField(max_length=255)
        size = serializers.IntegerField(min_value=1)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: UploadOutputSerializer,
            **error_responses(400, 401, 403, 404, 405, 413, 503),
        },
    )
    def post(self, request, video_id):
        answer = self.call_service(video_initiate_upload, request=request, video_id=video_id)
        return Response({**answer, "url": request.build_absolute_uri(answer["url"])})


class VideoUploadEndedApi(VideoApiBase):
    @extend_schema_serializer(component_name="VideoUploadEndedInput")
    class InputSerializer(serializers.Serializer):
        file_key = serializers.CharField(max_length=1024)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: VideoOutputSerializer,
            **error_responses(400, 401, 403, 404, 405, 413, 503),
        },
    )
    def post(self, request, video_id):
        video = self.call_service(video_upload_ended, request=request, video_id=video_id)
        # Eager mode has already run the launch on commit: answer the state it left.
        video.refresh_from_db()
        return Response(VideoOutputSerializer(video).data)


@require_GET
def video_hls_playlist(request, video_id, token, path):
    """A private bucket's HLS playlist with signed entries (VIDEOS_SIGN_URLS_AT_READ).

    The token in the URL stands for the caller's permission (players cannot send the JWT);
    entries expire, so nothing may cache the answer; any origin may read it (hls.js).
    """
    try:
        playlist = hls.video_hls_playlist(video_id=video_id, token=token, path=path)
    except hls.HlsNotFound as err:
        raise Http404(str(err)) from err
    response = HttpResponse(playlist, content_type="application/vnd.apple.mpegurl")
    response["Cache-Control"] = "no-store"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@extend_schema(exclude=True)
class VideoApiNotFound(VideoApiBase):
    """Any other path under api/videos/ (a malformed id too): a 404 in the API's shape, after
    the same authentication and permission checks as the real routes."""

    def get(self, request, *args, **kwargs):
        raise NotFound("No such video.")

    post = put = patch = delete = get
